//! The rows of a Parquet file as JSON objects (the `parquet` feature), through the `parquet`
//! crate's record reader: strings, numbers, lists and structs (chat-message lists) map to
//! their JSON counterparts, so each row is then read exactly as a JSONL line
//! ([`super::rows::parse_object`]). Pages compressed with Snappy (pyarrow's default), gzip
//! or LZ4 are read; a file compressed with another codec (zstd, brotli) is an error from the
//! reader naming it.

use std::fs::File;

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::{Map, Value};

/// Every row of the Parquet file at `path`, in order, as a JSON object.
pub(crate) fn read(path: &str) -> Result<Vec<Map<String, Value>>, String> {
    let file = File::open(path)
        .map_err(|e| format!("cannot read {path:?}: {e}; give the path of a Parquet file"))?;
    let reader =
        SerializedFileReader::new(file).map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| format!("cannot read the rows: {e}"))?;
    rows.enumerate()
        .map(|(i, row)| {
            let row = row.map_err(|e| format!("row {}: {e}", i + 1))?;
            match row.to_json_value() {
                Value::Object(map) => Ok(map),
                other => Err(format!("row {}: not a record: {other}", i + 1)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parquet::data_type::{ByteArray, ByteArrayType, Int32Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    use crate::tasks::{task_from_spec, Split, Verdict};

    /// Writes a GSM8K-style Parquet file: `question`, `answer` (strings), `level` (int32).
    fn write(path: &std::path::Path, rows: &[(&str, &str, i32)]) {
        let schema = Arc::new(
            parse_message_type(
                "message gsm8k { REQUIRED BYTE_ARRAY question (UTF8); \
                 REQUIRED BYTE_ARRAY answer (UTF8); REQUIRED INT32 level; }",
            )
            .unwrap(),
        );
        let props = Arc::new(WriterProperties::builder().build());
        let file = std::fs::File::create(path).unwrap();
        let mut writer = SerializedFileWriter::new(file, schema, props).unwrap();
        let mut group = writer.next_row_group().unwrap();
        for column in 0..3 {
            let mut col = group.next_column().unwrap().unwrap();
            if column < 2 {
                let values: Vec<ByteArray> = rows
                    .iter()
                    .map(|r| ByteArray::from(if column == 0 { r.0 } else { r.1 }))
                    .collect();
                col.typed::<ByteArrayType>()
                    .write_batch(&values, None, None)
                    .unwrap();
            } else {
                let values: Vec<i32> = rows.iter().map(|r| r.2).collect();
                col.typed::<Int32Type>()
                    .write_batch(&values, None, None)
                    .unwrap();
            }
            col.close().unwrap();
        }
        group.close().unwrap();
        writer.close().unwrap();
    }

    #[test]
    fn parquet_rows_load_like_jsonl_rows() {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("spar-tasks-{}-gsm8k.parquet", std::process::id()));
        // Rows q0.. go to a split by the hash rule; enough rows for both splits.
        let questions: Vec<String> = (0..40).map(|i| format!("What is {i} plus 1?")).collect();
        let answers: Vec<String> = (0..40)
            .map(|i| format!("{i} + 1 = <<{i}+1={}>>{}\n#### {}", i + 1, i + 1, i + 1))
            .collect();
        let rows: Vec<(&str, &str, i32)> = questions
            .iter()
            .zip(&answers)
            .map(|(q, a)| (q.as_str(), a.as_str(), 0))
            .collect();
        write(&path, &rows);
        let spec = format!("parquet:{}", path.display());
        let task = task_from_spec(&spec).unwrap();
        assert_eq!(task.name(), spec);
        let total = task.split_size(Split::Train).unwrap() + task.split_size(Split::Test).unwrap();
        assert_eq!(total, 40);
        let p = task.problem(Split::Train, 0, 0);
        let i: u32 = p.question["What is ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(p.answer, (i + 1).to_string());
        assert_eq!(task.verify(&p, &p.solution), Verdict::Correct);
        assert_eq!(
            task.verify(&p, &format!("#### {}", i + 1)),
            Verdict::Correct
        );
        assert!(!task.verify(&p, &format!("#### {}", i + 2)).is_correct());

        // A key that is not there: the file, the row and the key are named.
        let spec = format!("parquet(path={},question_key=problem)", path.display());
        let err = task_from_spec(&spec).unwrap_err();
        assert!(
            err.contains(&path.display().to_string())
                && err.contains("row 1")
                && err.contains("missing key \"problem\" (question_key)"),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        let err = task_from_spec(&format!("parquet:{}", path.display())).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
    }
}
