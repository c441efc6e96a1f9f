//! Reading a CSV file into a table of text cells, checking its shape: a header, unique
//! column names, every row as wide as the header. Handles quoted fields, CRLF and a UTF-8 BOM.

use std::path::Path;

use crate::error::{Error, Result};

/// A CSV file read as text: the header and the rows, each with its line number.
#[derive(Clone, Debug)]
pub struct Table {
    /// The file, for messages.
    pub file: String,
    /// Column names.
    pub header: Vec<String>,
    /// Cells, row by row.
    pub rows: Vec<Vec<String>>,
    /// 1-based line number of each row in the file.
    pub lines: Vec<usize>,
}

fn data_err(file: &str, line: Option<usize>, column: Option<&str>, message: impl Into<String>) -> Error {
    Error::Data { file: file.to_string(), line, column: column.map(str::to_string), message: message.into() }
}

impl Table {
    /// Reads and checks a CSV file.
    pub fn read(path: &Path) -> Result<Table> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::parse(&path.display().to_string(), &bytes)
    }

    /// Parses CSV text; `file` names it in messages.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Table> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(data_err(file, None, None, "the file is empty"));
        }
        let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
        let mut records = rdr.records();
        let header: Vec<String> = match records.next() {
            Some(Ok(r)) => r.iter().map(|s| s.trim().to_string()).collect(),
            Some(Err(e)) => return Err(data_err(file, Some(1), None, format!("unreadable header: {e}"))),
            None => return Err(data_err(file, None, None, "the file is empty")),
        };
        for (i, h) in header.iter().enumerate() {
            if h.is_empty() {
                return Err(data_err(file, Some(1), None, format!("column {} has no name", i + 1)));
            }
            if header[..i].contains(h) {
                return Err(data_err(file, Some(1), Some(h), "duplicate column name"));
            }
        }
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for rec in records {
            let rec = rec.map_err(|e| {
                let line = e.position().map(|p| p.line() as usize);
                data_err(file, line, None, format!("malformed CSV: {e}"))
            })?;
            let line = rec.position().map_or(0, |p| p.line() as usize);
            if rec.len() == 1 && rec.get(0).is_some_and(|s| s.trim().is_empty()) {
                continue; // a blank line
            }
            if rec.len() != header.len() {
                return Err(data_err(
                    file,
                    Some(line),
                    None,
                    format!("{} fields, but the header has {}", rec.len(), header.len()),
                ));
            }
            rows.push(rec.iter().map(|s| s.trim().to_string()).collect());
            lines.push(line);
        }
        if rows.is_empty() {
            return Err(data_err(file, None, None, "the file has a header but no rows"));
        }
        Ok(Table { file: file.to_string(), header, rows, lines })
    }

    /// Index of a column, or an error naming it and the file.
    pub fn column(&self, name: &str, key: &str) -> Result<usize> {
        self.header.iter().position(|h| h == name).ok_or_else(|| {
            data_err(
                &self.file,
                None,
                Some(name),
                format!("no such column (named by {key}); columns are {}", self.header.join(", ")),
            )
        })
    }

    /// Parses cell (row, col) as a finite number.
    pub fn number(&self, row: usize, col: usize) -> Result<f32> {
        let s = &self.rows[row][col];
        let v: f32 = s.parse().map_err(|_| {
            let what = if s.is_empty() { "empty cell".to_string() } else { format!("{s:?} is not a number") };
            data_err(&self.file, Some(self.lines[row]), Some(&self.header[col]), what)
        })?;
        if !v.is_finite() {
            return Err(data_err(
                &self.file,
                Some(self.lines[row]),
                Some(&self.header[col]),
                format!("{s:?} is not a finite number"),
            ));
        }
        Ok(v)
    }

    /// The error for cell (row, col) with a message.
    pub fn cell_error(&self, row: usize, col: usize, message: impl Into<String>) -> Error {
        data_err(&self.file, Some(self.lines[row]), Some(&self.header[col]), message)
    }
}
