//! The check that a developer guide quotes its worked example verbatim.
//!
//! `docs/adding-a-game.md` and `docs/adding-a-loop.md` teach by quoting a test file that
//! compiles and runs (`crates/spar-games/tests/adding_a_game.rs`,
//! `crates/spar-rl/tests/adding_a_loop.rs`). Each quoted block is a `rust` code fence on the
//! line after the marker `<!-- quoted from FILE -->`. [`check_guide_quotes`], called by a
//! test in the quoted file, panics when
//!
//! * a marker is not followed by a ```` ```rust ```` fence, or a fence is never closed;
//! * a quoted block is empty or is not, character for character, part of the file;
//! * the guide stops quoting one of the parts it must show, in the order given (the parts
//!   of a game in reading order; a loop's methods in the order `trainer::run` calls them).
//!
//! Only blocks with the marker are checked: a guide may show other code (a shell command, a
//! snippet of another crate) in unmarked blocks.

/// One guide and the file it quotes.
#[derive(Debug, Clone, Copy)]
pub struct GuideQuotes<'a> {
    /// The guide's path on disk, read when checked (a test builds it from
    /// `env!("CARGO_MANIFEST_DIR")`).
    pub guide: &'a str,
    /// The quoted file's path from the workspace root, exactly as the guide's marker names
    /// it (`crates/spar-rl/tests/adding_a_loop.rs`).
    pub file: &'a str,
    /// The quoted file's text (`include_str!` of it).
    pub text: &'a str,
    /// Strings the quoted blocks must contain, in this order.
    pub parts: &'a [&'a str],
}

/// Checks that the guide quotes only text of the file and quotes every one of `parts`, in
/// order; panics with the offending block or part otherwise.
pub fn check_guide_quotes(quotes: &GuideQuotes<'_>) {
    let markdown =
        std::fs::read_to_string(quotes.guide).unwrap_or_else(|e| panic!("{}: {e}", quotes.guide));
    check_markdown(quotes, &markdown);
}

/// [`check_guide_quotes`] on the guide's text.
fn check_markdown(quotes: &GuideQuotes<'_>, markdown: &str) {
    let marker = format!("<!-- quoted from {} -->", quotes.file);
    let blocks = quoted_blocks(quotes.guide, markdown, &marker);
    for block in &blocks {
        assert!(
            !block.trim().is_empty() && quotes.text.contains(block.as_str()),
            "{} quotes a block that is not in {}:\n{block}",
            quotes.guide,
            quotes.file
        );
    }
    let quoted = blocks.join("\n");
    let mut last = 0;
    for part in quotes.parts {
        match quoted[last..].find(part) {
            Some(at) => last += at + part.len(),
            None => panic!(
                "{} no longer quotes {part:?} from {} (in order)",
                quotes.guide, quotes.file
            ),
        }
    }
}

/// The code blocks of `markdown` on the line after `marker`.
fn quoted_blocks(guide: &str, markdown: &str, marker: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim() != marker {
            continue;
        }
        let fence = lines.next().unwrap_or_default();
        assert_eq!(
            fence, "```rust",
            "{guide}: a ```rust block must follow {marker}"
        );
        let mut block = Vec::new();
        loop {
            match lines.next() {
                Some("```") => break,
                Some(line) => block.push(line),
                None => panic!(
                    "{guide}: a quoted block is never closed:\n{}",
                    block.join("\n")
                ),
            }
        }
        blocks.push(block.join("\n"));
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "fn one() {}\n\nfn two() {\n    2\n}\n";

    fn quotes<'a>(parts: &'a [&'a str]) -> GuideQuotes<'a> {
        GuideQuotes {
            guide: "guide.md",
            file: "src/example.rs",
            text: FILE,
            parts,
        }
    }

    const GUIDE: &str = "# Guide\n\n<!-- quoted from src/example.rs -->\n```rust\nfn one() {}\n```\n\
                         Then:\n\n<!-- quoted from src/example.rs -->\n```rust\nfn two() {\n    2\n}\n```\n\
                         ```sh\ncargo test\n```\n";

    #[test]
    fn a_faithful_guide_passes() {
        check_markdown(&quotes(&["fn one", "fn two"]), GUIDE);
        // Unmarked blocks are not checked, and parts may repeat a block.
        check_markdown(&quotes(&["fn two", "2"]), GUIDE);
    }

    #[test]
    #[should_panic(expected = "guide.md quotes a block that is not in src/example.rs")]
    fn an_edited_block_fails() {
        check_markdown(&quotes(&[]), &GUIDE.replace("    2", "    3"));
    }

    #[test]
    #[should_panic(expected = "no longer quotes \"fn one\" from src/example.rs (in order)")]
    fn parts_out_of_order_fail() {
        check_markdown(&quotes(&["fn two", "fn one"]), GUIDE);
    }

    #[test]
    #[should_panic(expected = "no longer quotes \"fn three\"")]
    fn a_missing_part_fails() {
        check_markdown(&quotes(&["fn one", "fn three"]), GUIDE);
    }

    #[test]
    #[should_panic(expected = "a ```rust block must follow")]
    fn a_marker_without_a_rust_fence_fails() {
        check_markdown(&quotes(&[]), &GUIDE.replacen("```rust", "```", 1));
    }

    #[test]
    #[should_panic(expected = "a quoted block is never closed")]
    fn an_unclosed_block_fails() {
        let guide = "<!-- quoted from src/example.rs -->\n```rust\nfn one() {}\n";
        check_markdown(&quotes(&[]), guide);
    }

    #[test]
    #[should_panic(expected = "quotes a block that is not in")]
    fn an_empty_block_fails() {
        check_markdown(
            &quotes(&[]),
            "<!-- quoted from src/example.rs -->\n```rust\n```\n",
        );
    }
}
