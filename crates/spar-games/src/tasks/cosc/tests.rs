use super::*;
use crate::tasks::task_from_spec;

fn env(spec: &str, stages: usize, index: u64) -> CoscEnv {
    let task: Arc<dyn Task> = Arc::from(task_from_spec(spec).unwrap());
    let mut env = CoscEnv::new(task, Split::Train, 0, stages).unwrap();
    env.reset(index);
    env
}

/// Plays `turns` in order; returns the outcomes.
fn play(env: &mut CoscEnv, turns: &[&str]) -> Vec<StepOutcome> {
    turns
        .iter()
        .map(|t| {
            let seat = env.current_player().expect("the episode is still running");
            env.step(seat, t).outcome
        })
        .collect()
}

#[test]
fn a_slip_then_its_correction_shows_every_output_and_answers_right() {
    let mut e = env("countdown(numbers=3)", 3, 4);
    let problem = e.problem().unwrap().clone();
    let solution = problem.solution.clone();
    let first = e.observation(0);
    assert_eq!(first.role.key(), "countdown/turn1");
    assert_eq!(first.state_text, problem.question);
    assert!(first.system.ends_with(RULES), "{}", first.system);
    assert_eq!(
        first.full_prompt(),
        format!("{}\n\n{}", first.system, problem.question)
    );
    let outcomes = play(&mut e, &["[PROG] 1+1\n[OUT] 99"]);
    assert!(matches!(&outcomes[0], StepOutcome::Move { action_text, .. } if action_text == "1+1"));
    // The model's own [OUT] line is dropped: the tool's output is shown.
    assert_eq!(e.trajectory(), "\n[PROG] 1+1\n[OUT] 2");
    assert_eq!(e.observation(1).role.name, "turn2");
    let second = format!("[VERIFY] wrong\n[CONCLUDE] continue\n[PROG] {solution}");
    play(&mut e, &[&second]);
    let target = problem.question.split("Target: ").nth(1).unwrap();
    let target = target.trim_end_matches('.');
    assert_eq!(
        e.observation(2).state_text,
        format!(
            "{}\n[PROG] 1+1\n[OUT] 2\n{second}\n[OUT] {target}",
            problem.question
        )
    );
    assert_eq!(e.returns(), vec![0.0; 4]);
    let outcomes = play(
        &mut e,
        &[&format!("[VERIFY] ok\n[CONCLUDE] \\boxed{{{solution}}}")],
    );
    assert!(matches!(&outcomes[0], StepOutcome::Move { .. }));
    assert!(e.is_done());
    assert_eq!(e.returns(), vec![1.0; 4]);
    let episode = e.episode().unwrap();
    assert_eq!(episode.stages, vec![false, true]);
    assert_eq!(episode.continued, vec![true, false]);
    assert!(episode.correct && !episode.invalid);
    assert_eq!(e.transcript().turns.len(), 3);
    assert_eq!(e.transcript().returns, Some(vec![1.0; 4]));
}

#[test]
fn arithmetic_answers_with_the_output_and_a_wrong_box_scores_zero() {
    let mut e = env("arithmetic(digits=2)", 2, 0);
    let problem = e.problem().unwrap().clone();
    let expression = problem.question.trim_end_matches('=').to_string();
    play(&mut e, &[&format!("[PROG] {expression}")]);
    assert_eq!(
        e.executed(),
        &[Stage {
            program: expression.clone(),
            output: problem.answer.clone(),
            right: true,
        }]
    );
    play(&mut e, &["[VERIFY] same\n[CONCLUDE] \\boxed{100000}"]);
    assert_eq!(e.returns(), vec![0.0; 3]);
    assert!(matches!(e.end(), Some(CoscEnd::Answered { verdict }) if !verdict.is_correct()));
    let episode = e.episode().unwrap();
    assert_eq!(
        (episode.stages.clone(), episode.correct),
        (vec![true], false)
    );
}

#[test]
fn format_breaks_are_invalid_moves_that_end_the_episode() {
    for (turns, reason) in [
        (vec!["1+2"], "no [PROG] line"),
        (
            vec!["[PROG] 1+2", "[VERIFY] fine \\boxed{3}"],
            "no [CONCLUDE]",
        ),
        (
            vec!["[PROG] 1+2", "[CONCLUDE] \\boxed{3}"],
            "no [VERIFY] before",
        ),
        (
            vec!["[PROG] 1+2", "[VERIFY] x [CONCLUDE] maybe"],
            "neither answers",
        ),
        (
            vec!["[PROG] 1+2", "[VERIFY] x [CONCLUDE] continue [PROG] 2+2"],
            "stage limit (1)",
        ),
    ] {
        let mut e = env("arithmetic", 1, 3);
        let outcomes = play(&mut e, &turns);
        let last = outcomes.last().unwrap();
        assert!(
            matches!(last, StepOutcome::Invalid { reason: r, retry: false } if r.contains(reason)),
            "{turns:?}: {last:?}"
        );
        assert!(e.is_done(), "{turns:?}");
        assert_eq!(e.returns(), vec![0.0; 2]);
        assert_eq!(e.transcript().invalid_moves.iter().sum::<usize>(), 1);
        assert!(e.episode().unwrap().invalid);
    }
    // A program the tool cannot run is not invalid: the error is its output.
    let mut e = env("arithmetic", 2, 3);
    let outcomes = play(&mut e, &["[PROG] 4/(2-2)"]);
    assert!(matches!(outcomes[0], StepOutcome::Move { .. }));
    assert!(e.trajectory().ends_with("[OUT] error: division by zero"));
    // Out of turn: retry; after the end: refused, nothing changes.
    let step = e.step(0, "[PROG] 1");
    assert!(matches!(
        step.outcome,
        StepOutcome::Invalid { retry: true, .. }
    ));
    play(&mut e, &["[VERIFY] x\n[CONCLUDE] \\boxed{1}"]);
    let after = e.step(2, "[PROG] 1");
    assert!(after.done && matches!(after.outcome, StepOutcome::Invalid { .. }));
}

#[test]
fn any_text_is_a_move_or_an_invalid_move_never_a_panic() {
    let mut rng = spar_core::seeded_rng(11);
    let alphabet: Vec<char> = "[]PROGUTVEIFYCNLD\\boxed{}0123456789+-*/() \ncontinue"
        .chars()
        .collect();
    for i in 0..300 {
        let mut e = env("countdown", 3, i);
        while let Some(seat) = e.current_player() {
            let len = rng.gen_range(0..40);
            let text: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            // Give the format a chance: half the messages start with the expected marker.
            let text = match (seat, rng.gen_bool(0.5)) {
                (0, true) => format!("[PROG] {text}"),
                (_, true) => format!("[VERIFY] {text}[CONCLUDE] {text}"),
                _ => text,
            };
            e.step(seat, &text);
            assert!(seat < e.num_players());
        }
        assert!(e.episode().is_some());
        assert!(e.executed().len() <= 3);
    }
}

#[test]
fn teacher_trajectories_answer_right_and_slip_at_the_configured_rate() {
    let mut rng = spar_core::seeded_rng(5);
    for spec in ["arithmetic(digits=1..3,ops=+-*)", "countdown(numbers=2..4)"] {
        let mut stages_used = 0;
        let n = 200;
        for i in 0..n {
            let mut e = env(spec, 3, i);
            let turns = teacher_turns(&e, 0.5, &mut rng);
            let texts: Vec<&str> = turns.iter().map(String::as_str).collect();
            play(&mut e, &texts);
            let episode = e.episode().unwrap();
            assert!(episode.correct, "{spec}: {turns:?}");
            // Every slip is wrong and revised; the last stage is the reference.
            let k = episode.stages.len();
            assert_eq!(episode.stages[..k - 1], vec![false; k - 1][..]);
            assert!(episode.stages[k - 1]);
            assert_eq!(turns.len(), k + 1);
            assert!(turns[k].contains("[CONCLUDE] \\boxed{"));
            stages_used += k;
        }
        // E[stages] with a limit of 3 and rate 1/2: 1 + 1/2 + 1/4 = 1.75.
        let mean = stages_used as f64 / n as f64;
        assert!((1.55..1.95).contains(&mean), "{spec}: {mean}");
    }
    // Single stage (program of thought), and a rate of 1 up to the limit.
    let e = env("countdown", 1, 0);
    let pot = teacher_turns(&e, 1.0, &mut rng);
    let solution = &e.problem().unwrap().solution;
    assert_eq!(pot[0], format!("[PROG] {solution}"));
    assert!(
        pot[1].starts_with("[VERIFY] value ")
            && pot[1].ends_with(&format!("\\boxed{{{solution}}}"))
    );
    assert_eq!(pot.len(), 2);
    let e = env("countdown", 3, 0);
    assert_eq!(teacher_turns(&e, 1.0, &mut rng).len(), 4);
    assert_eq!(teacher_turns(&e, 0.0, &mut rng).len(), 2);
}

#[test]
fn tasks_without_programs_are_refused() {
    let task: Arc<dyn Task> = Arc::from(task_from_spec("wordproblem").unwrap());
    let e = CoscEnv::new(task, Split::Train, 0, 2).unwrap_err();
    assert!(e.contains("arithmetic or countdown"), "{e}");
}
