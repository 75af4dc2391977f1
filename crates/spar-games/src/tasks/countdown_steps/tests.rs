use super::*;
use crate::tasks::task_from_spec;
use crate::tasks::tests_support::check_generated_task;

fn task() -> Arc<CountdownSteps> {
    Arc::new(CountdownSteps::from_spec("countdown_steps(numbers=3,turns=6)").unwrap())
}

/// The hand-written problem `Numbers: 3 7 25. Target: 46.`
pub(crate) fn hand_problem() -> Problem {
    Problem {
        id: "hand".into(),
        question: "Numbers: 3 7 25. Target: 46.".into(),
        answer: String::new(),
        difficulty: 3,
        solution: String::new(),
    }
}

/// An environment on [`hand_problem`].
fn hand_env() -> CountdownStepsEnv {
    let mut env = CountdownStepsEnv::new(task(), Split::Train, 0);
    env.reset_with(hand_problem(), 0);
    env
}

#[test]
fn steps_parse_by_hand() {
    let op = |a, op, b, claimed| StepAction::Op { a, op, b, claimed };
    assert_eq!(parse_step("25-3=22"), Ok(op(25, '-', 3, Some(22))));
    assert_eq!(parse_step(" 25 - 3 = 22. "), Ok(op(25, '-', 3, Some(22))));
    assert_eq!(parse_step("7*3"), Ok(op(7, '*', 3, None)));
    assert_eq!(parse_step("Thought: wrong.\nUNDO"), Ok(StepAction::Undo));
    assert_eq!(
        parse_step("Thought: first 3*7.\n3*7=21\n\n"),
        Ok(op(3, '*', 7, Some(21)))
    );
    for bad in [
        "",
        "  \n ",
        "-3+4",
        "3+",
        "3+4=",
        "3+4=x",
        "three plus four",
        "3+4+5",
        "1234567890123+1",
        "3 4",
        "٣+٤",
        "3+4=7=7",
    ] {
        assert!(parse_step(bad).is_err(), "{bad:?}: {:?}", parse_step(bad));
    }
}

#[test]
fn state_applies_and_refuses_steps_by_hand() {
    let mut s = StepState::new(&[25, 3, 7]);
    assert_eq!(s.numbers, [3, 7, 25]);
    let op = |a, o, b| StepAction::Op {
        a,
        op: o,
        b,
        claimed: None,
    };
    assert_eq!(s.apply(op(25, '-', 3)), Ok(("25-3=22".into(), Some(22))));
    assert_eq!(s.numbers, [7, 22]);
    assert_eq!(
        s.apply(op(7, '-', 22)),
        Err("7-22 is not positive".to_string())
    );
    assert_eq!(
        s.apply(op(22, '/', 7)),
        Err("22/7 is not a whole number".to_string())
    );
    assert_eq!(
        s.apply(op(7, '+', 7)),
        Err("7 is there only once".to_string())
    );
    assert_eq!(
        s.apply(op(3, '+', 7)),
        Err("3 is not one of the numbers".to_string())
    );
    let claimed = StepAction::Op {
        a: 7,
        op: '*',
        b: 22,
        claimed: Some(155),
    };
    assert_eq!(s.apply(claimed), Err("7*22 is 154, not 155".to_string()));
    assert_eq!(s.numbers, [7, 22], "refused steps change nothing");
    assert_eq!(s.apply(op(7, '*', 22)), Ok(("7*22=154".into(), Some(154))));
    assert_eq!(s.numbers, [154]);
    assert_eq!(s.depth(), 2);
    assert_eq!(s.apply(StepAction::Undo), Ok(("undo".into(), None)));
    assert_eq!(s.numbers, [7, 22]);
    assert_eq!(s.apply(StepAction::Undo), Ok(("undo".into(), None)));
    assert_eq!(s.numbers, [3, 7, 25]);
    assert!(s
        .apply(StepAction::Undo)
        .unwrap_err()
        .contains("nothing to undo"));
    // Equal numbers given twice may be combined.
    let mut twice = StepState::new(&[4, 4]);
    assert_eq!(twice.apply(op(4, '/', 4)), Ok(("4/4=1".into(), Some(1))));
    assert_eq!(operate(6, '/', 0), None);
    assert_eq!(operate(999_999_999_999, '+', 1), None);
}

#[test]
fn solvability_by_hand() {
    // 25 + 3 * 7 = 46.
    assert!(solvable(&[3, 7, 25], 46));
    // From 7 and 22 (after 25 - 3): 29, 15, 154 and nothing else.
    assert!(solvable(&[7, 22], 15));
    assert!(!solvable(&[7, 22], 46));
    assert!(!solvable(&[154], 46));
    // Not every number need be used.
    assert!(solvable(&[2, 3, 100], 5));
    assert!(!solvable(&[2, 2], 3));
    // 2-4 is not positive and 2/4 not whole.
    let steps: Vec<String> = operations(&[2, 4, 7])
        .into_iter()
        .map(|o| o.0)
        .take(6)
        .collect();
    assert_eq!(
        steps,
        ["2+4=6", "2*4=8", "2+7=9", "2*7=14", "4+2=6", "4-2=2"]
    );
    assert_eq!(operations(&[2, 4, 7])[5].2, [7, 2]);
}

#[test]
fn an_episode_by_hand() {
    let mut env = hand_env();
    assert_eq!(env.current_player(), Some(0));
    let obs = env.observation(0);
    assert_eq!(obs.role.key(), "countdown_steps/solver");
    assert_eq!(obs.full_prompt(), "Numbers: 3 7 25. Target: 46.");
    // A wrong turn, an invalid one, its repetition, an undo, then the solution.
    let s = env.step(0, "25-3=22");
    assert!(!s.done && matches!(s.outcome, StepOutcome::Move { .. }));
    let s = env.step(0, "7+7");
    assert!(!s.done && matches!(s.outcome, StepOutcome::Invalid { retry: false, .. }));
    env.step(0, "7+7");
    env.step(0, "Thought: I took a wrong turn.\nundo");
    assert_eq!(env.state().numbers, [3, 7, 25]);
    env.step(0, "3*7=21");
    assert_eq!(
        env.observation(0).state_text,
        "Numbers: 3 7 25. Target: 46.\n25-3=22 -> 7 22\ninvalid: 7 is there only once\n\
         invalid: 7 is there only once\nundo -> 3 7 25\n3*7=21 -> 21 25"
    );
    let s = env.step(0, "25+21");
    assert!(s.done && !s.truncated);
    assert_eq!(env.returns(), vec![1.0]);
    assert!(env.reached());
    assert_eq!(env.transcript().invalid_moves, vec![2]);
    assert_eq!(
        env.repeated_actions(),
        1,
        "the second 7+7 in the same state"
    );
    assert_eq!(env.turns_played(), 6);
    assert_eq!(env.current_player(), None);
    let after = env.step(0, "25+21");
    assert!(after.done && matches!(after.outcome, StepOutcome::Invalid { .. }));
    // Redoing a step after its undo is a repeated action too.
    let mut env = hand_env();
    for text in ["25-3", "undo", "25-3", "undo", "undo"] {
        env.step(0, text);
    }
    assert_eq!(
        env.repeated_actions(),
        2,
        "25-3=22 redone, undo from 7 22 again"
    );
    // Six turns without the target: truncated, return 0.
    let s = env.step(0, "7*3");
    assert!(s.done && s.truncated && env.truncated());
    assert_eq!(env.returns(), vec![0.0]);
}

#[test]
fn the_environment_keeps_its_contract_on_hostile_text() {
    let long = "9".repeat(1_000_000);
    let wide = "é".repeat(100_000);
    for seed in 0..4 {
        let mut env = CountdownStepsEnv::new(task(), Split::Test, 0);
        assert_eq!(env.current_player(), None);
        assert!(matches!(
            env.step(0, "3+4").outcome,
            StepOutcome::Invalid { .. }
        ));
        env.reset(seed);
        let s = env.step(1, "3+4");
        assert!(matches!(s.outcome, StepOutcome::Invalid { retry: true, .. }) && !s.done);
        for text in ["", "\0", "🦀", "<|endoftext|>", &long, &wide, "7÷7", "1/0"] {
            if env.is_done() {
                break;
            }
            let s = env.step(0, text);
            assert!(
                matches!(s.outcome, StepOutcome::Invalid { .. }),
                "{text:.20}"
            );
        }
        // Each reason quotes at most 20 characters of the text.
        assert!(env.observation(0).state_text.len() < 2_000);
        assert_eq!(env.transcript().invalid_moves[0], env.turns_played());
    }
}

#[test]
fn the_task_replays_its_reference_steps() {
    check_generated_task("countdown_steps(numbers=2..4)", 300);
    let t = task_from_spec("countdown_steps(numbers=3,max=25,target_max=100,turns=12)").unwrap();
    assert_eq!(
        t.name(),
        "countdown_steps(numbers=3,max=25,target_max=100,turns=12)"
    );
    let p = Problem {
        id: "hand".into(),
        question: "Numbers: 3 7 25. Target: 46.".into(),
        answer: String::new(),
        difficulty: 3,
        solution: String::new(),
    };
    assert_eq!(t.verify(&p, "3*7=21\n25+21=46"), Verdict::Correct);
    assert_eq!(t.verify(&p, "25-3\nundo\n3*7\n21+25"), Verdict::Correct);
    assert_eq!(
        t.verify(&p, "25+3*7"),
        Verdict::Unparsable {
            reason: "expected `a op b = c` or `undo`, got \"25+3*7\"".into()
        }
    );
    assert_eq!(
        t.verify(&p, "3*7\n25-21"),
        Verdict::Wrong {
            got: "3*7;25-21".into(),
            reason: "the steps do not reach 46".into()
        }
    );
    assert_eq!(
        t.extract_answer("3*7 = 21\n\n25+21"),
        Some("3*7;25+21".into())
    );
    // The reference solution: the generator's expression, innermost step first.
    let q = t.problem(Split::Train, 5, 0);
    let c = task_from_spec("countdown(numbers=3)")
        .unwrap()
        .problem(Split::Train, 5, 0);
    assert_eq!(q.question, c.question);
    assert_eq!(q.solution.lines().count() as u32, q.difficulty - 1);
    for (spec, needle) in [
        ("countdown_steps(turns=0)", "turns"),
        ("countdown_steps(turns=65)", "turns"),
        ("countdown_steps(moves=3)", "moves"),
        ("countdown_steps(numbers=1)", "numbers"),
    ] {
        let e = task_from_spec(spec).unwrap_err();
        assert!(e.contains(needle), "{spec}: {e}");
    }
    let e = CountdownSteps::from_spec("countdown(numbers=3)").unwrap_err();
    assert!(e.contains("countdown_steps("), "{e}");
}
