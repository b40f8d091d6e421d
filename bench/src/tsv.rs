//! Results as tab-separated files with a header line: each measuring run appends rows, the
//! report reads them back by column name.

use std::{
    collections::HashMap,
    fs::{self, OpenOptions},
    io::Write as _,
    path::Path,
};

use anyhow::{Context as _, Result};

/// Appends one row to `path`, writing `header` first when the file is new or empty.
pub fn append(path: &Path, header: &[&str], row: &[String]) -> Result<()> {
    assert_eq!(header.len(), row.len(), "one value per column");
    let fresh = fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true);
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut text = String::new();
    if fresh {
        text.push_str(&header.join("\t"));
        text.push('\n');
    }
    text.push_str(&row.join("\t"));
    text.push('\n');
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// One row, by column name.
pub type Row = HashMap<String, String>;

/// Every row of `path` (none when it does not exist).
pub fn read(path: &Path) -> Result<Vec<Row>> {
    let Ok(text) = fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Ok(Vec::new());
    };
    let names: Vec<&str> = header.split('\t').collect();
    Ok(lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            names
                .iter()
                .zip(l.split('\t'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect())
}

/// A numeric column of a row (`None` when missing or not a number).
pub fn num(row: &Row, column: &str) -> Option<f64> {
    row.get(column)?.parse().ok()
}
