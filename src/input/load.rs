//! Table files as UTF-8 CSV text: `.xlsx` workbooks and GB18030 bytes
//! converted on the way in.

/// Reads a table file as UTF-8 CSV text with LF line ends: an `.xlsx`
/// workbook (chosen by the extension) becomes CSV, one line per sheet row;
/// bytes that are not UTF-8 are read as GB18030.
pub fn load(path: &std::path::Path) -> Result<Vec<u8>, std::io::Error> {
    let bytes = std::fs::read(path)?;
    let xlsx = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx") || e.eq_ignore_ascii_case("xlsm"));
    if xlsx {
        return xlsx_to_csv(bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a readable .xlsx workbook: {e}"),
            )
        });
    }
    Ok(text_to_csv(bytes))
}

/// UTF-8 as it is, else GB18030 (GBK is its subset); CRLF and lone CR
/// become LF so that the CSV reader counts the file's own lines.
pub fn text_to_csv(bytes: Vec<u8>) -> Vec<u8> {
    let text = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let b = e.into_bytes();
            encoding_rs::GB18030.decode(&b).0.into_owned()
        }
    };
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n").into_bytes()
    } else {
        text.into_bytes()
    }
}

/// The first sheet of a workbook as CSV. Row `r` of the sheet (1-based) is
/// line `r` of the text, so messages name the row HR sees. Dates become
/// `YYYY-MM-DD`, date-times `YYYY-MM-DD HH:MM:SS`, whole numbers lose
/// their `.0`; line breaks inside a cell become spaces.
pub fn xlsx_to_csv(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    use calamine::{Data, Reader, Xlsx};
    let mut book = Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let range = match book.worksheet_range_at(0) {
        Some(r) => r.map_err(|e| e.to_string())?,
        None => return Err("the workbook has no sheet".into()),
    };
    let mut out = Vec::new();
    let Some((row0, col0)) = range.start() else {
        return Ok(out);
    };
    out.extend(std::iter::repeat_n(b'\n', row0 as usize));
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .flexible(true)
        .from_writer(out);
    for row in range.rows() {
        let mut fields: Vec<String> = vec![String::new(); col0 as usize];
        for c in row {
            fields.push(match c {
                Data::Empty => String::new(),
                Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => {
                    s.replace(['\r', '\n'], " ")
                }
                Data::Int(i) => i.to_string(),
                Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
                Data::Float(f) => f.to_string(),
                Data::Bool(b) => b.to_string(),
                Data::DateTime(d) => {
                    let (y, mo, da, h, mi, se, ms) = d.to_ymd_hms_milli();
                    // Milliseconds round to the nearest second, as a
                    // spreadsheet shows them.
                    let se = se as u32 + u32::from(ms >= 500);
                    // Below 1 is a time of day (serial 0, Excel's
                    // "1900-01-00", is no date anyone rosters).
                    if d.as_f64() < 1.0 {
                        format!("{h:02}:{mi:02}:{:02}", se.min(59))
                    } else if d.as_f64().fract() == 0.0 {
                        format!("{y:04}-{mo:02}-{da:02}")
                    } else {
                        format!("{y:04}-{mo:02}-{da:02} {h:02}:{mi:02}:{:02}", se.min(59))
                    }
                }
                Data::Error(e) => format!("#{e:?}"),
            });
        }
        if fields.iter().all(String::is_empty) {
            // A blank row stays a (skipped) blank line.
            w.write_record(std::iter::empty::<&str>())
                .map_err(|e| e.to_string())?;
        } else {
            w.write_record(&fields).map_err(|e| e.to_string())?;
        }
    }
    w.into_inner().map_err(|e| e.to_string())
}
