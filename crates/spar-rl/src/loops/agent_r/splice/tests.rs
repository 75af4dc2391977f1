use super::*;
use crate::loops::agent_r::search::tests::hand_tree;

const THOUGHT: &str = "Thought: I realize my approach was flawed. I need to revise it.";

/// The turns of a trajectory: (completion, trained).
fn turns(t: &Trajectory) -> Vec<(&str, bool)> {
    t.turns.iter().map(|(_, c, on)| (c.as_str(), *on)).collect()
}

#[test]
fn pairs_errors_and_splices_of_the_hand_tree() {
    // The hand tree (search/tests.rs): leaves C (invalid at the root, v = 0), D (25-3=22,
    // 7*22=154: v = 0) and E (3*7=21, 25+21=46: v = 1).
    let (tree, _) = hand_tree();
    assert_eq!(good_paths(&tree, 0.5), [vec![2, 5]]);
    let pairs = pairs(&tree, 0.5, 0.5, 2);
    assert_eq!(
        pairs,
        [
            Pair {
                good: vec![2, 5],
                bad: vec![3],
                divergence: 0
            },
            Pair {
                good: vec![2, 5],
                bad: vec![1, 4],
                divergence: 0
            },
        ]
    );
    // No pair when the good path is not better by more than beta, or with room for one.
    assert!(super::pairs(&tree, 0.5, 1.0, 2).is_empty());
    assert_eq!(super::pairs(&tree, 0.5, 0.5, 1).len(), 1);
    // D's first error: A (25-3=22) already has value 0/1 < 0.5.
    let d = &pairs[1];
    assert_eq!(first_error(&tree, d, 0.5), 0);
    assert_eq!(
        first_error(&tree, d, 0.0),
        1,
        "nothing below 0: the last step"
    );
    // Agent-R's splice: the bad step masked, one undo after the thought, the good path.
    let spliced = splice(&tree, d, 0, THOUGHT).unwrap();
    assert_eq!(
        turns(&spliced),
        [
            ("25-3=22", false),
            (&*format!("{THOUGHT}\nundo"), true),
            ("3*7=21", true),
            ("Thought: add them.\n25+21", true),
        ]
    );
    assert_eq!(
        spliced.turns[2].0.state_text,
        "Numbers: 3 7 25. Target: 46.\n25-3=22 -> 7 22\nundo -> 3 7 25"
    );
    assert_eq!(spliced.trained().count(), 3);
    // Late revision: the whole bad path masked, two undos.
    let late = splice(&tree, d, 1, THOUGHT).unwrap();
    assert_eq!(
        turns(&late),
        [
            ("25-3=22", false),
            ("7*22", false),
            (&*format!("{THOUGHT}\nundo"), true),
            ("undo", true),
            ("3*7=21", true),
            ("Thought: add them.\n25+21", true),
        ]
    );
    // An invalid step changes nothing: the thought goes before the good path's first step.
    let c = &pairs[0];
    assert_eq!(first_error(&tree, c, 0.5), 0);
    let spliced = splice(&tree, c, 0, THOUGHT).unwrap();
    assert_eq!(
        turns(&spliced),
        [
            ("oops", false),
            (&*format!("{THOUGHT}\n3*7=21"), true),
            ("Thought: add them.\n25+21", true),
        ]
    );
    // The good path whole, every turn trained.
    let good = good_trajectory(&tree, &[2, 5]).unwrap();
    assert_eq!(
        turns(&good),
        [("3*7=21", true), ("Thought: add them.\n25+21", true)]
    );
    // A path that does not reach the target is no trajectory.
    assert!(good_trajectory(&tree, &[1, 4]).is_none());
}
