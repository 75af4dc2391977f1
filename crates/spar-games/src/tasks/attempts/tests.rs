use super::*;
use crate::tasks::task_from_spec;

fn env(attempts: usize, feedback: Feedback) -> AttemptsEnv {
    let task: Arc<dyn Task> = Arc::from(task_from_spec("arithmetic").unwrap());
    let mut env = AttemptsEnv::new(
        task,
        Split::Train,
        0,
        attempts,
        feedback,
        DEFAULT_INSTRUCTION,
    );
    env.reset(3);
    env
}

#[test]
fn two_attempts_each_rewarded_and_the_second_reads_the_first() {
    let mut e = env(2, Feedback::None);
    let problem = e.problem().unwrap().clone();
    let first = e.observation(0);
    // Attempt 1 reads what TaskEnv shows.
    let mut single = crate::tasks::TaskEnv::new(e.task().clone(), Split::Train, 0);
    single.reset(3);
    assert_eq!(first.prompt(), single.observation(0).prompt());
    assert_eq!(first.role.key(), "arithmetic/attempt1");
    assert_eq!(e.current_player(), Some(0));
    let wrong = format!("{}", problem.answer.parse::<i64>().unwrap() + 1);
    let s = e.step(0, &wrong);
    assert!(!s.done);
    assert_eq!(e.current_player(), Some(1));
    let second = e.observation(1);
    assert_eq!(second.role.key(), "arithmetic/attempt2");
    assert_eq!(
        second.state_text,
        format!(
            "{}\nAttempt 1: {wrong}\n{DEFAULT_INSTRUCTION}",
            problem.question
        )
    );
    let s = e.step(1, &problem.answer);
    assert!(s.done);
    assert_eq!(e.current_player(), None);
    assert_eq!(e.returns(), vec![0.0, 1.0]);
    assert_eq!(e.transcript().returns, Some(vec![0.0, 1.0]));
    assert_eq!(e.transcript().turns.len(), 2);
    assert!(e.verdicts()[1].is_correct());
    // After the end nothing changes.
    let s = e.step(0, "1");
    assert!(matches!(
        s.outcome,
        StepOutcome::Invalid { retry: false, .. }
    ));
    assert_eq!(e.returns(), vec![0.0, 1.0]);
}

#[test]
fn feedback_lines_never_state_the_answer() {
    let p = Problem {
        id: "x".into(),
        question: "7+5=".into(),
        answer: "12".into(),
        difficulty: 1,
        solution: "12".into(),
    };
    let wrong = |got: &str| Verdict::Wrong {
        got: got.into(),
        reason: format!("{got} != 12"),
    };
    let unparsable = Verdict::Unparsable {
        reason: "no number".into(),
    };
    assert_eq!(Feedback::None.line(&p, &wrong("13")), "");
    assert_eq!(
        Feedback::Verdict.line(&p, &wrong("13")),
        "The answer is wrong."
    );
    assert_eq!(
        Feedback::Verdict.line(&p, &Verdict::Correct),
        "The answer is correct."
    );
    assert_eq!(
        Feedback::Verdict.line(&p, &unparsable),
        "No answer was found."
    );
    assert_eq!(Feedback::Text.line(&p, &wrong("13")), "13 is too high.");
    assert_eq!(Feedback::Text.line(&p, &wrong("-4")), "-4 is too low.");
    assert_eq!(
        Feedback::Text.line(&p, &unparsable),
        "No answer was found: no number."
    );
    // Not numbers: the task's reason.
    let expression = Problem {
        answer: "25+25-4".into(),
        ..p.clone()
    };
    let v = Verdict::Wrong {
        got: "25+3".into(),
        reason: "uses 3, which is not given".into(),
    };
    assert_eq!(
        Feedback::Text.line(&expression, &v),
        "The answer is wrong: uses 3, which is not given."
    );
    for f in Feedback::ALL {
        assert_eq!(f.name().parse::<Feedback>().unwrap(), f);
    }
    assert!("loud"
        .parse::<Feedback>()
        .unwrap_err()
        .contains("none, verdict, text"));
}

#[test]
fn text_feedback_reaches_the_next_attempt_and_invalid_answers_count_per_seat() {
    let mut e = env(3, Feedback::Text);
    let problem = e.problem().unwrap().clone();
    let want: i64 = problem.answer.parse().unwrap();
    e.step(0, "no idea");
    e.step(1, &format!("Answer: {}", want + 2));
    let third = e.observation(2).state_text;
    assert!(
        third.contains("Attempt 1: no idea\nNo answer was found"),
        "{third}"
    );
    assert!(
        third.contains(&format!(
            "Attempt 2: Answer: {}\n{} is too high.",
            want + 2,
            want + 2
        )),
        "{third}"
    );
    assert!(third.ends_with(DEFAULT_INSTRUCTION));
    // Out of turn: refused with retry, nothing recorded.
    let s = e.step(0, "5");
    assert!(matches!(
        s.outcome,
        StepOutcome::Invalid { retry: true, .. }
    ));
    assert_eq!(e.verdicts().len(), 2);
    e.step(2, &problem.answer);
    assert_eq!(e.returns(), vec![0.0, 0.0, 1.0]);
    assert_eq!(e.transcript().invalid_moves, vec![1, 0, 0]);
}

#[test]
fn the_env_keeps_its_contract_on_hostile_text() {
    let hostile = [
        String::new(),
        "\u{0}".to_string(),
        "Answer:".to_string(),
        "x".repeat(20_000),
        "Ünïcödé ☃ −3".to_string(),
        "Answer: Answer: Answer:".to_string(),
    ];
    for spec in [
        "arithmetic(digits=1..3,ops=+-*)",
        "countdown",
        "wordproblem",
    ] {
        let task: Arc<dyn Task> = Arc::from(task_from_spec(spec).unwrap());
        let mut e = AttemptsEnv::new(task, Split::Test, 1, 2, Feedback::Text, "again");
        // Before reset: no player, steps refused.
        assert_eq!(e.current_player(), None);
        assert!(matches!(
            e.step(0, "1").outcome,
            StepOutcome::Invalid { .. }
        ));
        for seed in 0..30u64 {
            e.reset(seed);
            let first = e.observation(0);
            e.reset(seed);
            assert_eq!(e.observation(0), first, "reset is deterministic");
            let problem = e.problem().unwrap().clone();
            for k in 0..2 {
                let text = match (seed + k) % 3 {
                    0 => problem.solution.clone(),
                    _ => hostile[(seed as usize + k as usize) % hostile.len()].clone(),
                };
                let step = e.step(k as usize, &text);
                assert_eq!(step.done, k == 1);
            }
            let returns = e.returns();
            assert_eq!(e.transcript().returns.as_ref(), Some(&returns));
            for (r, v) in returns.iter().zip(e.verdicts()) {
                assert_eq!(*r, v.reward());
            }
            assert!(e.observation(1).state_text.starts_with(&problem.question));
        }
    }
}

fn spoc_env() -> AttemptsEnv {
    let task: Arc<dyn Task> = Arc::from(task_from_spec("arithmetic").unwrap());
    let mut env = AttemptsEnv::new(task, Split::Train, 0, 3, Feedback::Text, "Try again.")
        .with_self_verification();
    env.reset(3);
    env
}

#[test]
fn verifications_are_parsed_from_their_last_yes_or_no() {
    for (text, want) in [
        ("yes", Some(true)),
        ("No.", Some(false)),
        ("  YES!", Some(true)),
        ("Answer: no", Some(false)),
        ("no, wait: yes", Some(true)),
        ("Answer: yes. Answer: no", Some(false)),
        ("the answer is not known", None),
        ("yesterday", None),
        ("", None),
        ("noyes", None),
    ] {
        assert_eq!(parse_verification(text), want, "{text:?}");
    }
}

#[test]
fn self_verification_interleaves_attempts_and_verdicts_and_stops_at_yes() {
    let mut e = spoc_env();
    let problem = e.problem().unwrap().clone();
    let want: i64 = problem.answer.parse().unwrap();
    assert_eq!(e.num_players(), 6);
    assert_eq!(e.role(0).key(), "arithmetic/attempt1");
    assert_eq!(e.role(1).key(), "arithmetic/verify1");
    assert_eq!(e.role(4).key(), "arithmetic/attempt3");
    // Attempt 1 wrong; the verifier wrongly accepts nothing yet: it reads the attempt.
    e.step(0, &format!("{}", want + 1));
    assert_eq!(e.current_player(), Some(1));
    let judge = e.observation(1);
    assert_eq!(
        judge.state_text,
        format!(
            "{}\nAttempt 1: {}\n{VERIFY_INSTRUCTION}",
            problem.question,
            want + 1
        )
    );
    assert_eq!(judge.answer_format, VERIFY_FORMAT);
    // The verifier says no (right: the attempt was wrong), so attempt 2 comes, reading
    // the verification instead of the external feedback.
    e.step(1, "no");
    assert_eq!(e.current_player(), Some(2));
    assert_eq!(
        e.observation(2).state_text,
        format!(
            "{}\nAttempt 1: {}\nVerification 1: no\nTry again.",
            problem.question,
            want + 1
        )
    );
    // Attempt 2 right; the verifier says "maybe" (neither: invalid), so attempt 3 comes.
    e.step(2, &problem.answer);
    let s = e.step(3, "maybe");
    assert!(matches!(
        s.outcome,
        StepOutcome::Invalid { retry: false, .. }
    ));
    assert!(!s.done);
    // Attempt 3 right, accepted: the episode ends at the verifier's yes.
    e.step(4, &problem.answer);
    let s = e.step(5, "Answer: yes");
    assert!(s.done);
    assert_eq!(e.current_player(), None);
    // Returns: attempts 0, 1, 1; verifications right (no on wrong), neither (0), right.
    assert_eq!(e.returns(), vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
    assert_eq!(e.transcript().invalid_moves, vec![0, 0, 0, 1, 0, 0]);
    assert_eq!(e.checks(), vec![Some(false), None, Some(true)]);
    assert_eq!(
        e.judged(),
        vec![(false, Some(false)), (true, None), (true, Some(true))]
    );
    // An early yes ends the episode after two messages; unreached seats return 0.
    let mut e = spoc_env();
    e.step(0, "0");
    assert!(e.step(1, "yes").done);
    let r = e.returns();
    assert_eq!(r.len(), 6);
    assert_eq!(r[2..], [0.0; 4]);
    // A verification of a wrong attempt that says yes earns 0; of a right one, 1.
    let wrong_attempt = e.verdicts()[0].is_correct();
    assert_eq!(r[1], f64::from(u8::from(wrong_attempt)));
}

#[test]
fn role_reversal_puts_a_critique_between_attempts_worth_the_next_attempt() {
    let mut e = env(3, Feedback::Text).with_role_reversal();
    e.reset(0);
    let p = e.problem().unwrap().clone();
    let wrong = format!("{}", p.answer.parse::<i64>().unwrap() + 1);
    // attempt1, critique1, attempt2, critique2, attempt3: five messages.
    assert_eq!(e.num_players(), 5);
    assert_eq!(e.role(1).key(), "arithmetic/critique1");
    assert_eq!(e.role(4).key(), "arithmetic/attempt3");
    e.step(0, &wrong);
    let critique = e.observation(1);
    assert!(critique.state_text.ends_with(CRITIQUE_INSTRUCTION));
    assert!(critique.state_text.contains(&format!("Attempt 1: {wrong}")));
    // The external feedback is replaced by the model's own critique.
    assert!(!critique.state_text.contains("too high"));
    assert_eq!(critique.answer_format, CRITIQUE_FORMAT);
    let step = e.step(1, "  ");
    assert!(matches!(
        step.outcome,
        StepOutcome::Invalid { retry: false, .. }
    ));
    e.step(2, &p.answer);
    e.step(3, "It looks right to me.");
    let last = e.observation(4).state_text;
    assert!(last.contains("Critique 2 (the asker's view): It looks right to me."));
    assert!(last.ends_with(DEFAULT_INSTRUCTION));
    let done = e.step(4, &wrong);
    assert!(done.done);
    // Attempts: 0, 1, 0. Critique 1 led to a right answer (1); critique 2 to a wrong (0).
    assert_eq!(e.returns(), vec![0.0, 1.0, 1.0, 0.0, 0.0]);
    assert_eq!(e.transcript().invalid_moves, vec![0, 1, 0, 0, 0]);
    assert_eq!(e.critique_texts(), vec!["  ", "It looks right to me."]);
    assert!(e.checks().is_empty() && e.critiques() && !e.verifies());
    assert_eq!(e.answers().len(), 3);
}

#[test]
fn verifier_metrics_by_hand() {
    // Episode 1: wrong judged no, right judged yes. Episode 2: wrong judged yes.
    // Episode 3: right judged no, right judged neither.
    let episodes = vec![
        vec![(false, Some(false)), (true, Some(true))],
        vec![(false, Some(true))],
        vec![(true, Some(false)), (true, None)],
    ];
    let v = VerifyStats::of(&episodes);
    assert_eq!(v.checks, 5);
    assert!((v.mean_attempts - 5.0 / 3.0).abs() < 1e-12);
    assert_eq!(v.accuracy, 2.0 / 5.0);
    assert_eq!(v.false_yes_rate, 1.0 / 2.0);
    assert_eq!(v.false_no_rate, 1.0 / 3.0);
    assert_eq!(v.precision_wrong, 1.0 / 2.0);
    assert_eq!(v.recall_wrong, 1.0 / 2.0);
    assert_eq!(v.unparsable_rate, 1.0 / 5.0);
    assert_eq!(VerifyStats::of(&[]), VerifyStats::default());
}

#[test]
fn stats_carry_an_early_stopped_answer_forward() {
    // Stopped after one right attempt; wrong then right; wrong, wrong, wrong.
    let episodes = vec![
        vec![(true, "4")],
        vec![(false, "3"), (true, "4")],
        vec![(false, "1"), (false, "2"), (false, "2")],
    ];
    let s = AttemptStats::of(&episodes);
    assert_eq!(s.accuracy, vec![1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0]);
    assert_eq!((s.delta_i_to_c, s.delta_c_to_i), (1.0 / 3.0, 0.0));
    assert_eq!(s.round_i_to_c, vec![1.0 / 3.0, 0.0]);
    assert_eq!(s.round_c_to_i, vec![0.0, 0.0]);
    assert_eq!(s.identical_rate, 1.0 / 3.0);
}

#[test]
fn stats_count_transitions_by_hand() {
    // Four episodes: w->c, c->c (same text), c->w, w->w (same text).
    let episodes = vec![
        vec![(false, "3"), (true, "4")],
        vec![(true, "4"), (true, " 4 ")],
        vec![(true, "4"), (false, "5")],
        vec![(false, "2"), (false, "2")],
    ];
    let s = AttemptStats::of(&episodes);
    assert_eq!(s.episodes, 4);
    assert_eq!(s.accuracy, vec![0.5, 0.5]);
    assert_eq!((s.accuracy_t1, s.accuracy_t2, s.delta), (0.5, 0.5, 0.0));
    assert_eq!((s.delta_i_to_c, s.delta_c_to_i), (0.25, 0.25));
    assert_eq!(s.identical_rate, 0.5);
    assert_eq!(
        (s.round_i_to_c.clone(), s.round_c_to_i.clone()),
        (vec![0.25], vec![0.25])
    );
    // Per-round flips over three attempts: w->c->w and c->w->c.
    let s = AttemptStats::of(&[
        vec![(false, "1"), (true, "2"), (false, "3")],
        vec![(true, "2"), (false, "1"), (true, "2")],
    ]);
    assert_eq!(s.round_i_to_c, vec![0.5, 0.5]);
    assert_eq!(s.round_c_to_i, vec![0.5, 0.5]);
    assert_eq!(AttemptStats::of(&[]), AttemptStats::default());
}
