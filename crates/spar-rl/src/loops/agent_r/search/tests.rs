use std::sync::Arc;

use spar_games::tasks::{CountdownSteps, Problem, Split};
use spar_lm::sample::{Completion, FinishReason};

use super::*;

/// A policy written by hand: its step depends on the last line of the prompt (the state)
/// and, at the root, on the random stream.
struct Scripted {
    tokenizer: TextTokenizer,
}

impl Scripted {
    fn step(state: &str, stream: u64) -> &'static str {
        if state.ends_with("Target: 46.") {
            return ["25-3=22", "3*7=21", "3*7", "oops"][stream as usize % 4];
        }
        match state {
            "25-3=22 -> 7 22" => "7*22",
            "3*7=21 -> 21 25" => "Thought: add them.\n25+21",
            _ => "undo",
        }
    }
}

impl Engine for Scripted {
    fn generate_streams(
        &self,
        prompts: &[Vec<u32>],
        _params: &SamplingParams,
        streams: &[(u64, u64)],
    ) -> spar_lm::Result<Vec<std::result::Result<Completion, String>>> {
        prompts
            .iter()
            .zip(streams)
            .map(|(p, &(_, stream))| {
                let text = self.tokenizer.decode(p, true)?;
                let state = text.lines().map(str::trim).rfind(|l| !l.is_empty());
                Ok(Ok(Completion {
                    token_ids: Vec::new(),
                    text: Scripted::step(state.unwrap_or(""), stream).to_string(),
                    logprobs: Vec::new(),
                    finish_reason: FinishReason::Stop,
                }))
            })
            .collect()
    }

    fn score(
        &self,
        _pairs: &[(Vec<u32>, Vec<u32>)],
        _temperature: f64,
    ) -> spar_lm::Result<Vec<std::result::Result<Vec<f32>, String>>> {
        unreachable!("the search never scores")
    }
}

/// A tree whose root is `Numbers: 3 7 25. Target: 46.`
fn hand_root() -> Tree {
    let task = Arc::new(CountdownSteps::from_spec("countdown_steps(numbers=3)").unwrap());
    let mut env = CountdownStepsEnv::new(task, Split::Train, 0);
    env.reset_with(
        Problem {
            id: "hand".into(),
            question: "Numbers: 3 7 25. Target: 46.".into(),
            answer: String::new(),
            difficulty: 3,
            solution: String::new(),
        },
        0,
    );
    Tree::new(env)
}

/// The tree of four iterations of the scripted policy (worked out in
/// `the_search_of_a_scripted_policy_by_hand`): nodes root, A `25-3=22`, B `3*7=21`, C
/// invalid, D `7*22=154` under A, E `25+21=46` under B.
pub(crate) fn hand_tree() -> (Tree, SearchCounts) {
    let scripted = Scripted {
        tokenizer: TextTokenizer::byte_level(&["<|endoftext|>"]).unwrap(),
    };
    let params = SearchParams {
        max_depth: 10,
        iterations: 4,
        samples: 4,
        c: 0.25,
        sampling: SamplingParams::default(),
    };
    let mut trees = vec![hand_root()];
    let counts = search(
        &scripted,
        &scripted.tokenizer,
        PromptStyle::Raw,
        &mut trees,
        &params,
        7,
    )
    .unwrap();
    (trees.pop().unwrap(), counts)
}

#[test]
fn the_search_of_a_scripted_policy_by_hand() {
    // Iteration 1: the root is expanded into A (25-3), B (3*7 and 3*7=21: one child) and C
    // (invalid, terminal 0); A is simulated: 7*22 = D, a dead end (0). Iteration 2: B is
    // unvisited (+inf), expanded into E (reached, 1), backpropagated. Iteration 3: C is
    // unvisited (+inf) and terminal: 0 again. Iteration 4: root N = 3; A scores
    // 0 + 0.25 sqrt(ln 3 / 1) = 0.262, B 1.262, C 0.262: B, then its only child E, terminal.
    let (tree, counts) = hand_tree();
    let actions: Vec<&str> = tree.nodes.iter().map(|n| n.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "",
            "25-3=22",
            "3*7=21",
            "invalid:oops",
            "7*22=154",
            "25+21=46"
        ]
    );
    let parents: Vec<Option<usize>> = tree.nodes.iter().map(|n| n.parent).collect();
    assert_eq!(parents, [None, Some(0), Some(0), Some(0), Some(1), Some(2)]);
    let stats: Vec<(u32, f64)> = tree.nodes.iter().map(|n| (n.visits, n.value)).collect();
    assert_eq!(
        stats,
        [(4, 2.0), (1, 0.0), (2, 2.0), (1, 0.0), (1, 0.0), (2, 2.0)]
    );
    let terminal: Vec<Option<f64>> = tree.nodes.iter().map(|n| n.terminal).collect();
    assert_eq!(
        terminal,
        [None, None, None, Some(0.0), Some(0.0), Some(1.0)]
    );
    // Expansions of the root and B (4 steps each) and one simulated step; one invalid.
    assert_eq!(
        counts,
        SearchCounts {
            steps: 9,
            invalid: 1
        }
    );
    assert_eq!(tree.terminal_leaves(), [3, 4, 5]);
    assert_eq!(tree.path(4), [1, 4]);
    // The kept text is the model's own, thought included.
    assert_eq!(tree.nodes[5].text, "Thought: add them.\n25+21");
}

#[test]
fn uct_selection_by_hand() {
    let mut tree = hand_root();
    let mut add = |text: &str| tree.add_child(0, text, 10).0;
    let (a, b, c) = (add("25-3"), add("3*7"), add("25+3"));
    tree.nodes[0].expanded = true;
    // Unvisited children first, in order.
    assert_eq!(tree.select(0.25), a);
    tree.backpropagate(a, 0.0);
    assert_eq!(tree.select(0.25), b);
    tree.backpropagate(b, 1.0);
    tree.backpropagate(c, 0.0);
    tree.backpropagate(b, 0.0);
    // Root N = 4. A: 0 + c sqrt(ln 4 / 1) = 0.2943; B: 1/2 + c sqrt(ln 4 / 2) = 0.7081;
    // C: 0.2943. With c = 2: A and C 2.3548, B 2.1651, so A (the first of the two).
    assert_eq!(tree.nodes[0].visits, 4);
    assert_eq!(tree.select(0.25), b);
    assert_eq!(tree.select(2.0), a);
    // A repeated step is the existing child; a step at max_depth is terminal with value 0.
    assert_eq!(
        tree.add_child(0, "Thought: again.\n25 - 3 = 22", 10),
        (a, false)
    );
    let (deep, new) = tree.add_child(a, "7+22", 2);
    assert!(new && tree.nodes[deep].terminal == Some(0.0) && tree.nodes[deep].depth == 2);
    assert_eq!(tree.nodes[deep].mean(), 0.0);
    assert_eq!(tree.nodes[b].mean(), 0.5);
}
