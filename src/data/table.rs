//! Reading a CSV file into a table of text cells, checking its shape: a header, unique
//! column names, every row as wide as the header. Handles quoted fields, CRLF and a UTF-8 BOM.
//! The cells are kept compactly: their text back to back in one string and where each ends
//! (4 bytes a cell), not a string per cell (about 50 bytes each before its text).

use std::path::Path;

use crate::error::{Error, Result};

/// A CSV file read as text: the header and the rows, each with its line number.
#[derive(Clone, Debug)]
pub struct Table {
    /// The file, for messages.
    pub file: String,
    /// Column names.
    pub header: Vec<String>,
    /// Every cell's text (trimmed), row by row, back to back.
    text: String,
    /// Where each cell's text ends in `text` (row r's cell c is number r · width + c).
    ends: Vec<u32>,
    /// 1-based line number of each row in the file.
    pub lines: Vec<usize>,
}

/// A reader that notes the byte offset of every newline it passes on.
struct Newlines<R> {
    inner: R,
    at: u64,
    found: std::rc::Rc<std::cell::RefCell<Vec<u64>>>,
}

impl<R: std::io::Read> std::io::Read for Newlines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut found = self.found.borrow_mut();
        found.extend(buf[..n].iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| self.at + i as u64));
        self.at += n as u64;
        Ok(n)
    }
}

fn data_err(file: &str, line: Option<usize>, column: Option<&str>, message: impl Into<String>) -> Error {
    Error::Data { file: file.to_string(), line, column: column.map(str::to_string), message: message.into() }
}

impl Table {
    /// Reads and checks a CSV file, streaming it (the file's bytes are never all in memory).
    pub fn read(path: &Path) -> Result<Table> {
        use std::io::Read;
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let mut f = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
        let mut head = Vec::with_capacity(3);
        (&mut f).take(3).read_to_end(&mut head).map_err(io)?;
        let head = if head == b"\xEF\xBB\xBF" { Vec::new() } else { head };
        Self::parse_reader(&path.display().to_string(), std::io::Cursor::new(head).chain(f))
    }

    /// Parses CSV text; `file` names it in messages.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Table> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        Self::parse_reader(file, bytes)
    }

    fn parse_reader(file: &str, reader: impl std::io::Read) -> Result<Table> {
        // The csv reader's own line numbers skip blank lines and miscount CRLF, so a record's
        // line is counted here: the newlines before the last byte the reader took for it (its
        // terminator, or its end; its last line, its only one unless a quoted field spans lines).
        let newlines = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let reader = Newlines { inner: reader, at: 0, found: newlines.clone() };
        let line_at = |after: u64| newlines.borrow().partition_point(|&n| n < after.saturating_sub(1)) + 1;
        let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
        let mut rec = csv::StringRecord::new();
        let blank = |r: &csv::StringRecord| r.len() <= 1 && r.iter().all(|s| s.trim().is_empty());
        // Blank lines before the header are no header.
        let header: Vec<String> = loop {
            match rdr.read_record(&mut rec) {
                Ok(true) if blank(&rec) => continue,
                Ok(true) => break rec.iter().map(|s| s.trim().to_string()).collect(),
                Err(e) => return Err(data_err(file, Some(1), None, format!("unreadable header: {e}"))),
                Ok(false) => return Err(data_err(file, None, None, "the file is empty")),
            }
        };
        for (i, h) in header.iter().enumerate() {
            if h.is_empty() {
                return Err(data_err(file, Some(1), None, format!("column {} has no name", i + 1)));
            }
            if header[..i].contains(h) {
                return Err(data_err(file, Some(1), Some(h), "duplicate column name"));
            }
        }
        let mut table =
            Table { file: file.to_string(), header, text: String::new(), ends: Vec::new(), lines: Vec::new() };
        loop {
            match rdr.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = line_at(rdr.position().byte());
                    return Err(data_err(file, Some(line), None, format!("malformed CSV: {e}")));
                }
            }
            let line = line_at(rdr.position().byte());
            if blank(&rec) {
                continue;
            }
            if rec.len() != table.header.len() {
                return Err(data_err(
                    file,
                    Some(line),
                    None,
                    format!("{} fields, but the header has {}", rec.len(), table.header.len()),
                ));
            }
            table.push_row(rec.iter(), line)?;
        }
        if table.lines.is_empty() {
            return Err(data_err(file, None, None, "the file has a header but no rows"));
        }
        Ok(table)
    }

    /// A table from rows of cells already in memory (the built-in generators); row i is
    /// numbered line i + 2, as if under a header line.
    pub fn from_rows(file: &str, header: Vec<String>, rows: Vec<Vec<String>>) -> Result<Table> {
        let mut table =
            Table { file: file.to_string(), header, text: String::new(), ends: Vec::new(), lines: Vec::new() };
        for (i, row) in rows.iter().enumerate() {
            if row.len() != table.header.len() {
                return Err(data_err(file, Some(i + 2), None, "a row as wide as the header"));
            }
            table.push_row(row.iter().map(String::as_str), i + 2)?;
        }
        Ok(table)
    }

    fn push_row<'a>(&mut self, cells: impl Iterator<Item = &'a str>, line: usize) -> Result<()> {
        for c in cells {
            self.text.push_str(c.trim());
            let end = u32::try_from(self.text.len())
                .map_err(|_| data_err(&self.file, Some(line), None, "more than 4 GiB of cell text in one table"))?;
            self.ends.push(end);
        }
        self.lines.push(line);
        Ok(())
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The text of cell (row, col).
    pub fn cell(&self, row: usize, col: usize) -> &str {
        let i = row * self.header.len() + col;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// Row `row`'s cells.
    pub fn row(&self, row: usize) -> Vec<&str> {
        (0..self.header.len()).map(|c| self.cell(row, c)).collect()
    }

    /// Column `col`'s cells, row by row.
    pub fn column_cells(&self, col: usize) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(move |r| self.cell(r, col))
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
        let s = self.cell(row, col);
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
