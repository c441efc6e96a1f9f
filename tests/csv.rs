//! CSV edge cases: quoted fields, CRLF, BOM, missing labels, ragged rows, bad cells.

use hydra::data::{Columns, Dataset, Table};
use hydra::mtl::TaskDef;

fn tasks() -> Vec<TaskDef> {
    vec![TaskDef::regression("y", "y"), TaskDef::multiclass("c", "c", 3)]
}

fn load(text: &str) -> Result<Dataset, String> {
    let t = Table::parse("in.csv", text.as_bytes()).map_err(|e| e.to_string())?;
    Dataset::from_table(&t, None, &[], &tasks(), None).map_err(|e| e.to_string())
}

#[test]
fn quoted_fields_crlf_and_bom_are_read() {
    let d = load("\u{feff}\"a\",b,y,c\r\n\"1.5\",2,3,0\r\n4,\"5\",6,2\r\n").unwrap();
    assert_eq!(d.feature_names, vec!["a", "b"]);
    assert_eq!(d.features, vec![1.5, 2.0, 4.0, 5.0]);
    assert_eq!(d.labels[0], vec![3.0, 6.0]);
    assert_eq!(d.labels[1], vec![0.0, 2.0]);
}

#[test]
fn an_empty_target_cell_is_a_missing_label() {
    let d = load("a,y,c\n1,,1\n2,5,\n").unwrap();
    assert_eq!(d.masks[0], vec![0.0, 1.0]);
    assert_eq!(d.masks[1], vec![1.0, 0.0]);
}

#[test]
fn ragged_rows_name_the_line() {
    let e = load("a,y,c\n1,2,0\n1,2\n").unwrap_err();
    assert!(e.contains("in.csv, line 3") && e.contains("2 fields, but the header has 3"), "{e}");
}

#[test]
fn a_text_cell_makes_its_column_categorical() {
    let d = load("a,b,y,c\n1,5,2,0\nx,6,2,0\n,7,1,1\n").unwrap();
    assert_eq!(d.feature_names, vec!["b"]);
    assert_eq!(d.features, vec![5.0, 6.0, 7.0]);
    let a = &d.categorical[0];
    assert_eq!((a.name.as_str(), &a.levels), ("a", &vec!["".to_string(), "1".to_string(), "x".to_string()]));
    assert_eq!(a.ids, vec![2, 3, 1], "sorted categories, 1-based; the empty cell is its own");
}

#[test]
fn non_numeric_empty_and_non_finite_feature_cells_name_line_and_column() {
    // Where the categorical columns are fixed (a validation file, predict), text in a
    // numeric column is an error.
    let t = Table::parse("in.csv", b"a,y,c\n1,2,0\nx,2,0\n").unwrap();
    let fixed = Columns { fixed: true, ..Columns::default() };
    let e = Dataset::read(&t, &fixed, &tasks()).unwrap_err().to_string();
    assert!(e.contains("line 3") && e.contains("column \"a\"") && e.contains("\"x\" is not a number"), "{e}");
    let e = load("a,y,c\n,2,0\n").unwrap_err();
    assert!(e.contains("line 2") && e.contains("column \"a\"") && e.contains("empty cell"), "{e}");
    for bad in ["NaN", "inf", "-inf"] {
        let e = load(&format!("a,y,c\n1,2,0\n{bad},2,0\n")).unwrap_err();
        assert!(e.contains("line 3") && e.contains("not a finite number"), "{bad}: {e}");
    }
}

#[test]
fn class_labels_out_of_range_are_refused() {
    for bad in ["3", "-1", "1.5"] {
        let e = load(&format!("a,y,c\n1,2,0\n1,2,{bad}\n")).unwrap_err();
        assert!(e.contains("line 3") && e.contains("column \"c\"") && e.contains("out of range 0..2"), "{bad}: {e}");
    }
}

#[test]
fn empty_file_header_only_and_duplicate_columns_are_refused() {
    assert!(load("").unwrap_err().contains("the file is empty"));
    assert!(load("a,y,c\n").unwrap_err().contains("header but no rows"));
    let e = load("a,a,y,c\n1,2,3,0\n").unwrap_err();
    assert!(e.contains("line 1") && e.contains("column \"a\"") && e.contains("duplicate"), "{e}");
}

#[test]
fn a_missing_target_column_is_named() {
    let e = load("a,y\n1,2\n").unwrap_err();
    assert!(e.contains("column \"c\"") && e.contains("task[1].target"), "{e}");
}

#[test]
fn a_file_is_streamed_with_its_bom_and_blank_files_are_empty() {
    let dir = std::env::temp_dir().join(format!("hydra-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bom.csv");
    std::fs::write(&p, "\u{feff}\"a\",y,c\r\n\"1.5\",3,0\r\n\r\n4,6,2\r\n").unwrap();
    let t = Table::read(&p).unwrap();
    assert_eq!(t.header, vec!["a", "y", "c"]);
    assert_eq!((t.len(), t.cell(1, 0), t.lines.clone()), (2, "4", vec![2, 4]));
    std::fs::write(&p, " \n\n").unwrap();
    let e = Table::read(&p).unwrap_err().to_string();
    assert!(e.contains("bom.csv") && e.contains("the file is empty"), "{e}");
    std::fs::write(&p, "ab").unwrap();
    let e = Table::read(&p).unwrap_err().to_string();
    assert!(e.contains("header but no rows"), "{e}");
}
