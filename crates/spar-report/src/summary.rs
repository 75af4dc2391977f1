//! Markdown summaries, written by one renderer.
//!
//! A run's report ([`crate::report`]) and a comparison of arms ([`crate::compare`]) build a
//! [`Summary`], a title and a list of [`Block`]s, and [`summary_markdown`] writes it; tables
//! are [`Table`]s, whose cells are escaped in one place. Numbers are put in cells with
//! [`crate::format::fmt_number`] by the builders.

use std::fmt::Write as _;

/// A Markdown document: `# title`, then its blocks, one blank line apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) title: String,
    pub(crate) blocks: Vec<Block>,
}

/// One block of a [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Block {
    /// A heading of `level` (2 for `##`), below the title's 1.
    Heading(usize, String),
    /// A paragraph, as Markdown.
    Text(String),
    /// A bullet list, each item as Markdown.
    Bullets(Vec<String>),
    /// A table.
    Table(Table),
    /// An image `![alt](file)`.
    Image {
        /// The alternative text.
        alt: String,
        /// The file, relative to the summary.
        file: String,
    },
    /// A fenced code block in `language`; the fence is longer than any run of backticks in
    /// the text, so the text cannot close it.
    Code {
        /// The info string (`toml`).
        language: String,
        /// The code, without a final newline.
        text: String,
    },
}

/// A Markdown table: the first `left` columns are left-aligned (labels), the rest
/// right-aligned (numbers). Cells are plain text; `|` is escaped when written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    header: Vec<String>,
    left: usize,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with `header` and no rows yet.
    pub(crate) fn new(header: Vec<String>, left: usize) -> Table {
        Table {
            header,
            left,
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as the header has; a programmer error otherwise).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        assert_eq!(
            cells.len(),
            self.header.len(),
            "a table row has one cell per column"
        );
        self.rows.push(cells);
    }

    /// The table as Markdown lines, each ending in a newline.
    pub(crate) fn to_markdown(&self) -> String {
        let line = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut md = line(&self.header);
        md.push('|');
        for i in 0..self.header.len() {
            md.push_str(if i < self.left { "---|" } else { "---:|" });
        }
        md.push('\n');
        for row in &self.rows {
            md.push_str(&line(row));
        }
        md
    }
}

/// The Markdown of `summary`: `# title`, then every block after a blank line; the text ends
/// with one newline.
pub(crate) fn summary_markdown(summary: &Summary) -> String {
    let mut md = format!("# {}\n", summary.title);
    for block in &summary.blocks {
        md.push('\n');
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(md, "{} {text}", "#".repeat((*level).max(2)));
            }
            Block::Text(text) => {
                let _ = writeln!(md, "{text}");
            }
            Block::Bullets(items) => {
                for item in items {
                    let _ = writeln!(md, "- {item}");
                }
            }
            Block::Table(table) => md.push_str(&table.to_markdown()),
            Block::Image { alt, file } => {
                let _ = writeln!(md, "![{alt}]({file})");
            }
            Block::Code { language, text } => {
                let mut longest = 0;
                let mut run = 0;
                for c in text.chars() {
                    run = if c == '`' { run + 1 } else { 0 };
                    longest = longest.max(run);
                }
                let fence = "`".repeat((longest + 1).max(3));
                let _ = writeln!(md, "{fence}{language}\n{text}\n{fence}");
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_written_one_blank_line_apart() {
        let mut table = Table::new(vec!["arm".into(), "a|b".into(), "value".into()], 1);
        table.row(vec!["x|y".into(), "1".into(), "0.5".into()]);
        let summary = Summary {
            title: "T".into(),
            blocks: vec![
                Block::Bullets(vec!["one".into(), "two".into()]),
                Block::Heading(2, "Section".into()),
                Block::Text("Some *text*.".into()),
                Block::Table(table),
                Block::Image {
                    alt: "plot".into(),
                    file: "plot.svg".into(),
                },
                Block::Heading(3, "Sub".into()),
                Block::Code {
                    language: "toml".into(),
                    text: "a = 1".into(),
                },
            ],
        };
        assert_eq!(
            summary_markdown(&summary),
            "# T\n\n- one\n- two\n\n## Section\n\nSome *text*.\n\n\
             | arm | a\\|b | value |\n|---|---:|---:|\n| x\\|y | 1 | 0.5 |\n\n\
             ![plot](plot.svg)\n\n### Sub\n\n```toml\na = 1\n```\n"
        );
    }

    #[test]
    fn a_code_fence_outlasts_the_backticks_inside() {
        let summary = Summary {
            title: "T".into(),
            blocks: vec![Block::Code {
                language: String::new(),
                text: "a ```` b ``".into(),
            }],
        };
        assert_eq!(
            summary_markdown(&summary),
            "# T\n\n`````\na ```` b ``\n`````\n"
        );
    }

    #[test]
    #[should_panic(expected = "one cell per column")]
    fn a_short_row_is_a_programmer_error() {
        Table::new(vec!["a".into(), "b".into()], 0).row(vec!["1".into()]);
    }
}
