"""Exported table cells a spreadsheet will not run as formulas, and read back as they were given."""
import csv
import io

from clibd.cells import read_cell, safe_row, spreadsheet_safe


def test_formula_text_is_written_as_text_and_read_back_unchanged():
    attacks = ['=HYPERLINK("http://example.org","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
    for value in attacks:
        assert spreadsheet_safe(value) == "'" + value
    for value in attacks + ["'quoted", "'", "''", "'=1", "Aedes aegypti", "BIOUG123-45", "", "x=1"]:
        assert read_cell(spreadsheet_safe(value)) == value, value
    for number in ("-0.5", "+1", "-12", 97.3, None, 3):  # numbers (and non-text) stay as they are
        assert spreadsheet_safe(number) == number


def test_a_csv_row_holds_no_formula_cell():
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["id", "species", "score"])
    writer.writeheader()
    writer.writerow(safe_row({"id": "=1+1", "species": "Osmia pumila", "score": -0.25}))
    row = next(csv.DictReader(io.StringIO(buf.getvalue())))
    assert row == {"id": "'=1+1", "species": "Osmia pumila", "score": "-0.25"}
    assert read_cell(row["id"]) == "=1+1"
