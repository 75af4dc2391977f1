//! Tabular policy files: OpenSpiel's policy table as JSON.
//!
//! # Format
//! A JSON object with the game and the policy table:
//!
//! ```json
//! {
//!   "game": "kuhn",
//!   "policy": {
//!     "0":   [[0, 0.8], [1, 0.2]],
//!     "1pb": [[0, 0.4666], [1, 0.5334]]
//!   }
//! }
//! ```
//!
//! * `game` is a game specification (`kuhn`, `leduc`, `connect_four(rows=6)`); OpenSpiel's
//!   names `kuhn_poker` and `leduc_poker` are accepted for `kuhn` and `leduc`. It must name
//!   the game being evaluated (same name; same parameters when either side has any).
//! * `policy` maps an information-state string (for Kuhn and Leduc exactly OpenSpiel's) to
//!   a list of `[action, probability]` pairs: integer actions, each at most once, legal at
//!   that information state; probabilities finite, in `[0, 1]`, summing to 1 within 1e-6.
//!   Legal actions left out have probability 0. Information states left out of the table
//!   are played uniformly at random (OpenSpiel's default for a fresh `TabularPolicy`).
//! * A bare policy map (the `policy` object alone, without the wrapper) is accepted too;
//!   then no game check is possible.
//!
//! `policy` is exactly OpenSpiel's `TabularPolicy.policy_table()`, so from Python:
//!
//! ```python
//! json.dump({"game": "kuhn",
//!            "policy": {k: [list(p) for p in v]
//!                       for k, v in tabular_policy.policy_table().items()}}, f)
//! ```
//!
//! [`load`] checks all of the above and reports the file, the field and what is accepted;
//! [`save`] writes the wrapped form atomically (a temporary file, then a rename). The full
//! description, with examples, is `docs/policy-format.md`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use spar_core::{Action, Game, GameInfo, GameSpec, State, TabularPolicy};

use crate::error::{Error, Result};
use crate::tree::{GameTree, DISTRIBUTION_TOLERANCE};

/// Node limit for the legality check of [`load`]: larger games are checked for format only.
pub const VALIDATION_MAX_NODES: usize = 1_000_000;

/// OpenSpiel's names for games spar also ships under a shorter name.
const OPENSPIEL_ALIASES: &[(&str, &str)] = &[("kuhn_poker", "kuhn"), ("leduc_poker", "leduc")];

/// Reads and validates a policy file for `game`: JSON syntax, format, game name,
/// probabilities, and (when the game tree has at most [`VALIDATION_MAX_NODES`] nodes) that
/// every information state exists in the game and every action is legal there.
pub fn load<G: Game>(path: &Path, game: &G) -> Result<TabularPolicy> {
    let policy = load_unchecked_legality(path, game.info())?;
    match GameTree::build_with_limit(game, VALIDATION_MAX_NODES) {
        Ok(tree) => check_against_tree(path, &policy, &tree)?,
        Err(Error::TreeTooLarge { .. }) => {}
        Err(other) => return Err(other),
    }
    Ok(policy)
}

/// Like [`load`] with a tree the caller already built (no second enumeration).
pub fn load_with_tree<S: State>(path: &Path, tree: &GameTree<S>) -> Result<TabularPolicy> {
    let policy = load_unchecked_legality(path, tree.info())?;
    check_against_tree(path, &policy, tree)?;
    Ok(policy)
}

/// Reads a policy file and checks everything but the game tree: JSON syntax, format, game
/// name and probabilities.
pub fn load_unchecked_legality(path: &Path, info: &GameInfo) -> Result<TabularPolicy> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        action: "reading",
        source,
    })?;
    parse(&text, path, info)
}

/// Parses the text of a policy file (`path` is used in error messages only). Checks
/// everything but the game tree.
pub fn parse(text: &str, path: &Path, info: &GameInfo) -> Result<TabularPolicy> {
    let path_buf = path.to_path_buf();
    let document: Value = serde_json::from_str(text).map_err(|error| Error::PolicyJson {
        path: path_buf.clone(),
        line: error.line(),
        column: error.column(),
        message: error.to_string(),
    })?;
    let format = |field: &str, reason: String| Error::PolicyFormat {
        path: path_buf.clone(),
        field: field.to_string(),
        reason,
    };
    let Value::Object(top) = document else {
        return Err(format(
            "(top level)",
            format!("found {}, not an object", kind(&document)),
        ));
    };
    let table = match top.get("policy") {
        Some(Value::Object(table)) => {
            for key in top.keys() {
                if key != "game" && key != "policy" {
                    return Err(format(
                        key,
                        "unknown field; a wrapped policy file has only \"game\" and \"policy\""
                            .to_string(),
                    ));
                }
            }
            match top.get("game") {
                Some(Value::String(game)) => check_game(&path_buf, game, info)?,
                Some(other) => {
                    return Err(format(
                        "game",
                        format!("found {}, not a game specification string", kind(other)),
                    ))
                }
                None => {}
            }
            table
        }
        _ => &top,
    };
    let mut policy = TabularPolicy::default();
    for (info_state, entries) in table {
        let field = format!("policy[{info_state:?}]");
        let Value::Array(entries) = entries else {
            return Err(format(
                &field,
                format!(
                    "found {}, not a list of [action, probability] pairs",
                    kind(entries)
                ),
            ));
        };
        let mut distribution: Vec<(Action, f64)> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let field = format!("{field}[{i}]");
            let pair = match entry {
                Value::Array(pair) if pair.len() == 2 => pair,
                other => {
                    return Err(format(
                        &field,
                        format!(
                            "found {}, not an [action, probability] pair",
                            describe(other)
                        ),
                    ))
                }
            };
            let action = pair[0]
                .as_u64()
                .and_then(|a| usize::try_from(a).ok())
                .ok_or_else(|| {
                    format(
                        &field,
                        format!(
                            "action {} is not a non-negative integer",
                            describe(&pair[0])
                        ),
                    )
                })?;
            let probability = pair[1].as_f64().ok_or_else(|| {
                format(
                    &field,
                    format!("probability {} is not a number", describe(&pair[1])),
                )
            })?;
            if !probability.is_finite() || !(0.0..=1.0).contains(&probability) {
                return Err(Error::BadProbability {
                    path: path_buf.clone(),
                    info_state: info_state.clone(),
                    action,
                    value: probability,
                });
            }
            if distribution.iter().any(|&(a, _)| a == action) {
                return Err(Error::IllegalAction {
                    path: path_buf.clone(),
                    info_state: info_state.clone(),
                    action,
                    reason: "is listed twice",
                    legal: Vec::new(),
                });
            }
            distribution.push((action, probability));
        }
        let sum: f64 = distribution.iter().map(|&(_, p)| p).sum();
        if (sum - 1.0).abs() > DISTRIBUTION_TOLERANCE {
            return Err(Error::NotADistribution {
                path: path_buf.clone(),
                info_state: info_state.clone(),
                sum,
            });
        }
        distribution.sort_by_key(|&(action, _)| action);
        policy.insert(info_state.clone(), distribution);
    }
    Ok(policy)
}

/// Checks that every information state of `policy` belongs to a decision node of the tree
/// and gives probability only to legal actions there.
pub fn check_against_tree<S>(
    path: &Path,
    policy: &TabularPolicy,
    tree: &GameTree<S>,
) -> Result<()> {
    for (info_state, distribution) in &policy.table {
        let ids = tree.info_set_ids_for_key(info_state);
        if ids.is_empty() {
            return Err(Error::UnknownInfoState {
                path: path.to_path_buf(),
                info_state: info_state.clone(),
                game: tree.info().spec.clone(),
                known: tree.info_sets().len(),
                example: tree
                    .info_sets()
                    .first()
                    .map(|set| set.key.clone())
                    .unwrap_or_default(),
            });
        }
        let mut legal: Vec<Action> = ids
            .iter()
            .flat_map(|&id| tree.info_sets()[id].legal_actions.iter().copied())
            .collect();
        legal.sort_unstable();
        legal.dedup();
        for &(action, _) in distribution {
            if legal.binary_search(&action).is_err() {
                return Err(Error::IllegalAction {
                    path: path.to_path_buf(),
                    info_state: info_state.clone(),
                    action,
                    reason: "is not legal",
                    legal,
                });
            }
        }
    }
    Ok(())
}

/// Writes `policy` for the game `info` in the wrapped format, atomically: the JSON goes to
/// a temporary file in the same directory, which is then renamed over `path`.
pub fn save(path: &Path, policy: &TabularPolicy, info: &GameInfo) -> Result<()> {
    let text = to_json(policy, info);
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "policy.json".to_string());
    let temporary = path.with_file_name(format!(".{file_name}.tmp.{}", std::process::id()));
    let io = |action: &'static str, at: &Path| {
        let at: PathBuf = at.to_path_buf();
        move |source| Error::Io {
            path: at,
            action,
            source,
        }
    };
    let mut file = std::fs::File::create(&temporary).map_err(io("creating", &temporary))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("writing", &temporary))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        Error::Io {
            path: path.to_path_buf(),
            action: "renaming the temporary file onto",
            source,
        }
    })
}

/// The wrapped JSON text of `policy` for the game `info` (what [`save`] writes).
pub fn to_json(policy: &TabularPolicy, info: &GameInfo) -> String {
    #[derive(serde::Serialize)]
    struct File<'a> {
        game: &'a str,
        policy: &'a BTreeMap<String, Vec<(Action, f64)>>,
    }
    let mut text = serde_json::to_string_pretty(&File {
        game: &info.spec,
        policy: &policy.table,
    })
    .expect("a policy table serialises");
    text.push('\n');
    text
}

fn check_game(path: &Path, found: &str, info: &GameInfo) -> Result<()> {
    let mismatch = || Error::GameMismatch {
        path: path.to_path_buf(),
        expected: info.spec.clone(),
        found: found.to_string(),
    };
    let mut spec = GameSpec::parse(found).map_err(|_| mismatch())?;
    if let Some(&(_, ours)) = OPENSPIEL_ALIASES
        .iter()
        .find(|(alias, _)| *alias == spec.name)
    {
        spec.name = ours.to_string();
    }
    let expected = GameSpec::parse(&info.spec).map_err(|_| mismatch())?;
    if spec.name != info.name || spec.params != expected.params {
        return Err(mismatch());
    }
    Ok(())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 40 {
        format!("{}...", &text[..text.floor_char_boundary_compat(40)])
    } else {
        text
    }
}

/// `str::floor_char_boundary` is unstable; this is the same for our short previews.
trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, index: usize) -> usize {
        (0..=index.min(self.len()))
            .rev()
            .find(|&i| self.is_char_boundary(i))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_games::kuhn::{nash_policy, KuhnPoker};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "spar-eval-policy-file-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn load_text(text: &str) -> Result<TabularPolicy> {
        let dir = temp_dir("load");
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("p{n}.json"));
        std::fs::write(&path, text).unwrap();
        let result = load(&path, &KuhnPoker::new());
        std::fs::remove_file(&path).unwrap();
        result
    }

    #[test]
    fn save_then_load_round_trips() {
        let game = KuhnPoker::new();
        let path = temp_dir("roundtrip").join("nash.json");
        let policy = nash_policy(0.2);
        save(&path, &policy, game.info()).unwrap();
        assert_eq!(load(&path, &game).unwrap(), policy);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("{\n  \"game\": \"kuhn\",\n  \"policy\": {"),
            "{text}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn accepts_openspiel_names_and_bare_maps() {
        let wrapped = r#"{"game": "kuhn_poker", "policy": {"0": [[0, 0.75], [1, 0.25]]}}"#;
        assert_eq!(
            load_text(wrapped).unwrap().table["0"],
            vec![(0, 0.75), (1, 0.25)]
        );
        let bare = r#"{"1pb": [[1, 1.0]], "2": [[1, 0.5], [0, 0.5]]}"#;
        let policy = load_text(bare).unwrap();
        assert_eq!(
            policy.table["2"],
            vec![(0, 0.5), (1, 0.5)],
            "sorted by action"
        );
        assert_eq!(policy.table["1pb"], vec![(1, 1.0)]);
    }

    #[test]
    fn reports_json_errors_with_line_and_column() {
        let error = load_text("{\n  \"game\": \"kuhn\",\n  \"policy\": {\"0\": [[0, 1.0],]}\n}")
            .unwrap_err();
        match error {
            Error::PolicyJson { line, .. } => assert_eq!(line, 3),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn rejects_each_kind_of_bad_content() {
        let cases: [(&str, &str); 9] = [
            (r#"{"game": "leduc", "policy": {}}"#, "for game \"leduc\""),
            (
                r#"{"game": "kuhn", "policy": {}, "x": 1}"#,
                "field x: unknown field",
            ),
            (r#"[1, 2]"#, "not an object"),
            (r#"{"0": [[0, 1.5], [1, -0.5]]}"#, "probability 1.5"),
            (r#"{"0": [[0, 0.5], [1, 0.4]]}"#, "sum to 0.9"),
            (r#"{"0": [[0, 0.5], [0, 0.5]]}"#, "listed twice"),
            (r#"{"0": [[3, 1.0]]}"#, "action 3 is not legal"),
            (r#"{"0x": [[0, 1.0]]}"#, "policy[\"0x\"]: no decision node"),
            (r#"{"0": [[0.5, 1.0]]}"#, "not a non-negative integer"),
        ];
        for (text, expected) in cases {
            let message = load_text(text).unwrap_err().to_string();
            assert!(message.contains(expected), "{text}: {message}");
            assert!(message.contains(".json"), "names the file: {message}");
        }
    }
}
