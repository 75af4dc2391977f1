//! Tests of the self-play config.

use super::*;
use crate::config::LoraSettings;

#[test]
fn defaults_overrides_and_errors_name_the_key() {
    let c = TrainConfig::parse(
        "[run]\nsteps = 3\n",
        &["ppo.clip=0.1".into(), "game.name=leduc".into()],
    )
    .unwrap();
    assert_eq!(c.run.steps, 3);
    assert_eq!(c.ppo.clip, 0.1);
    assert_eq!(c.game.name, "leduc");
    assert_eq!(c.advantage.decay, 0.95);
    let back = TrainConfig::parse(&c.to_toml(), &[]).unwrap();
    assert_eq!(back, c);
    let e = TrainConfig::parse("[ppo]\nclipp = 0.1\n", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("clipp"), "{e}");
    let e = TrainConfig::parse("[ppo]\nepochs = \"two\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("epochs") || e.contains("integer"), "{e}");
    let e = TrainConfig::parse("", &["advantage.estimator=ppo".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("advantage.estimator"), "{e}");
    assert!(TrainConfig::parse("", &["ppo.clip".into()]).is_err());
}

#[test]
fn choices_list_every_fixed_set_key_with_the_values_it_accepts() {
    let choices = TrainConfig::choices();
    crate::config::check_choices(
        &TrainConfig::default().to_toml(),
        &[
            "opponents.protocol",
            "opponents.prompt_style",
            "opponents.view",
            "opponents.policy",
        ],
        &choices,
        |sets| TrainConfig::parse("", sets).map(drop),
    );
    let listed: Vec<&str> = choices.iter().map(|(k, _)| *k).collect();
    assert!(listed.contains(&"game.invalid_move_rule"), "{listed:?}");
}

#[test]
fn typed_values_keep_their_toml_strings() {
    let text = "[game]\nprotocol = \"bracketed\"\ninvalid_move_rule = \"retry:2\"\n\
                view = \"norules\"\n[model]\nprompt_style = \"raw\"\n[rollout]\n\
                policy = \"legal\"\nopponent = \"cfr+:3\"\npool_sampling = \"latest\"\n\
                [advantage]\nestimator = \"reinforce\"\nupdate = \"batch_mean\"\n[ppo]\n\
                loss_aggregation = \"token_mean\"\nlr_schedule = \"cosine\"\n\
                kl_estimator = \"k1\"\n[opponents]\nview = \"compact\"\n";
    let c = TrainConfig::parse(text, &[]).unwrap();
    assert_eq!(c.game.protocol, ProtocolKind::Bracketed);
    assert_eq!(c.game.invalid_move_rule, InvalidMoveRule::Retry(2));
    assert_eq!(c.game.view, View::NoRules);
    assert_eq!(c.model.prompt_style, PromptStyle::Raw);
    assert_eq!(c.rollout.policy, Decode::Legal);
    assert_eq!(c.rollout.opponent, Opponent::Player("cfr+:3".into()));
    assert_eq!(c.rollout.pool_sampling, PoolSampling::Latest);
    assert_eq!(
        c.advantage.estimator,
        EstimatorKind::Group(crate::objectives::estimators::Estimator::Reinforce)
    );
    assert_eq!(c.advantage.update, RaeUpdate::BatchMean);
    assert_eq!(c.ppo.loss_aggregation, PpoAggregation::TokenMean);
    assert_eq!(c.ppo.lr_schedule, LrSchedule::Cosine);
    assert_eq!(c.ppo.kl_estimator, KlEstimator::K1);
    assert_eq!(c.opponents.view, Some(View::Compact));
    assert_eq!(c.opponents.protocol, None);
    // The resolved config.toml holds the same strings, and reads back the same.
    let resolved = c.to_toml();
    for line in [
        "protocol = \"bracketed\"",
        "invalid_move_rule = \"retry:2\"",
        "view = \"norules\"",
        "prompt_style = \"raw\"",
        "policy = \"legal\"",
        "opponent = \"cfr+:3\"",
        "pool_sampling = \"latest\"",
        "estimator = \"reinforce\"",
        "update = \"batch_mean\"",
        "loss_aggregation = \"token_mean\"",
        "lr_schedule = \"cosine\"",
        "kl_estimator = \"k1\"",
        "view = \"compact\"",
    ] {
        assert!(resolved.contains(line), "{line}: {resolved}");
    }
    assert!(!resolved.contains("[opponents]\nprotocol"), "{resolved}");
    assert_eq!(TrainConfig::parse(&resolved, &[]).unwrap(), c);
    for (spec, opponent) in [("self", Opponent::SelfPlay), ("pool", Opponent::Pool)] {
        let c = TrainConfig::parse("", &[format!("rollout.opponent={spec}")]).unwrap();
        assert_eq!(c.rollout.opponent, opponent);
        assert!(c.to_toml().contains(&format!("opponent = \"{spec}\"")));
    }
    // The default config is what the strings' defaults were.
    let d = TrainConfig::default().to_toml();
    for line in [
        "protocol = \"boxed\"",
        "invalid_move_rule = \"spiral\"",
        "view = \"full\"",
        "prompt_style = \"auto\"",
        "policy = \"sample\"",
        "opponent = \"self\"",
        "pool_sampling = \"uniform\"",
        "estimator = \"rae\"",
        "update = \"per_game\"",
        "loss_aggregation = \"token_sum\"",
        "lr_schedule = \"constant\"",
        "kl_estimator = \"k3\"",
    ] {
        assert!(d.contains(line), "{line}: {d}");
    }
}

#[test]
fn unknown_values_name_the_key_and_the_accepted_values() {
    let error = |set: &str| {
        TrainConfig::parse("", &[set.into()])
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error("rollout.policy=smple"),
        "config: rollout.policy: \"smple\" is not one of sample, legal"
    );
    assert_eq!(
        error("opponents.prompt_style=plain"),
        "config: opponents.prompt_style: \"plain\" is not one of auto, chat, template, raw"
    );
    assert_eq!(
        error("game.invalid_move_rule=retry:-1"),
        "config: game.invalid_move_rule: \"retry:-1\" is not one of spiral, textarena, \
         retry:N (N a non-negative integer)"
    );
    assert_eq!(
        error("game.name=kuhnn"),
        "config: game.name: unknown game \"kuhnn\"; known games: kuhn, leduc, tictactoe, \
         connect_four, negotiation"
    );
    assert!(error("game.name=kuhn(hand=2)").contains("game.name"));
    assert!(error("game.names=[\"kuhn\", \"go\"]").starts_with("config: game.names: "));
    // A value of the wrong type names the key too.
    assert!(error("game.protocol=3").starts_with("config: game.protocol: invalid type"));
    // An unknown key names its section.
    assert!(error("ppo.clipp=0.1").starts_with("config: ppo: unknown field `clipp`"));
}

#[test]
fn lora_table_defaults_round_trips_and_errors_name_the_field() {
    assert_eq!(TrainConfig::parse("", &[]).unwrap().model.lora, None);
    assert!(!TrainConfig::default().to_toml().contains("lora"));
    let c = TrainConfig::parse("[model.lora]\n", &[]).unwrap();
    assert_eq!(c.model.lora, Some(LoraSettings::default()));
    let c = TrainConfig::parse(
        "[model.lora]\nr = 4\nalpha = 8.0\ntargets = [\"all-linear\"]\n",
        &["model.lora.r=2".into()],
    )
    .unwrap();
    let lora = c.model.lora.clone().unwrap();
    assert_eq!((lora.r, lora.alpha), (2, 8.0));
    assert_eq!(lora.lora_config().targets().unwrap().len(), 7);
    assert_eq!(lora.lora_config().scale(), 4.0);
    assert_eq!(TrainConfig::parse(&c.to_toml(), &[]).unwrap(), c);
    for (set, field) in [
        ("model.lora.r=0", "model.lora.r"),
        ("model.lora.alpha=-1.0", "model.lora.alpha"),
        ("model.lora.targets=[\"qproj\"]", "model.lora.targets"),
        ("model.lora.targets=[]", "model.lora.targets"),
        ("model.lora.rank=4", "rank"),
    ] {
        let e = TrainConfig::parse("[model.lora]\n", &[set.into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains(field), "{set}: {e}");
    }
}
