//! Request bodies of the push listeners: read within the body limit and
//! deadline, inflated when the terminal compressed them.

use std::io::Read;

use axum::http::{HeaderMap, header};

/// Inflates a `Content-Encoding: deflate` body (zlib framing as HTTP means
/// it, or raw deflate as some firmware send) or a `gzip` body, refusing
/// more than `max` bytes of output. `Ok(None)` when the encoding is
/// identity.
pub fn inflate(headers: &HeaderMap, body: &[u8], max: usize) -> Result<Option<Vec<u8>>, String> {
    let enc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let read = |r: &mut dyn Read| -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.take(max as u64 + 1).read_to_end(&mut out)?;
        Ok(out)
    };
    let out = match enc.as_str() {
        "" | "identity" => return Ok(None),
        "deflate" => read(&mut flate2::read::ZlibDecoder::new(body))
            .or_else(|_| read(&mut flate2::read::DeflateDecoder::new(body)))
            .map_err(|e| format!("deflate body does not inflate: {e}"))?,
        "gzip" | "x-gzip" => read(&mut flate2::read::MultiGzDecoder::new(body))
            .map_err(|e| format!("gzip body does not inflate: {e}"))?,
        other => {
            return Err(format!(
                "Content-Encoding {other:?} is not supported (identity, gzip or deflate)"
            ));
        }
    };
    if out.len() > max {
        return Err(format!("inflated body is larger than {max} bytes"));
    }
    Ok(Some(out))
}

/// Reads the body of a request that was already admitted (authenticated,
/// its terminal known, within its rate): at most `max` bytes (413 beyond),
/// within the listener's body deadline (408 after it). Handlers take the
/// body only after admission, so that a client that is refused never gets
/// to hold a connection open by sending a body slowly.
pub async fn read_body(
    body: axum::body::Body,
    max: usize,
) -> Result<bytes::Bytes, axum::response::Response> {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    match axum::body::to_bytes(body, max).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            let mut too_large = false;
            while let Some(c) = cause {
                if c.is::<http_body_util::LengthLimitError>() {
                    too_large = true;
                }
                cause = c.source();
            }
            Err(if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body is larger than {max} bytes\n"),
                )
                    .into_response()
            } else {
                (
                    StatusCode::REQUEST_TIMEOUT,
                    format!("body not received: {e}\n"),
                )
                    .into_response()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflate_reads_zlib_and_raw_deflate_and_caps() {
        use std::io::Write;
        let text = b"Code=AccessControl;action=Pulse;data={}".repeat(10);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        let zlib = z.finish().unwrap();
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(&text).unwrap();
        let raw = d.finish().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(inflate(&h, b"x", 10).unwrap(), None);
        h.insert(header::CONTENT_ENCODING, "deflate".parse().unwrap());
        assert_eq!(inflate(&h, &zlib, 1 << 20).unwrap().unwrap(), text);
        assert_eq!(inflate(&h, &raw, 1 << 20).unwrap().unwrap(), text);
        assert!(inflate(&h, &zlib, 16).unwrap_err().contains("larger"));
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        g.write_all(&text).unwrap();
        let gz = g.finish().unwrap();
        h.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert_eq!(inflate(&h, &gz, 1 << 20).unwrap().unwrap(), text);
        assert!(inflate(&h, &gz, 16).unwrap_err().contains("larger"));
        h.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        assert!(inflate(&h, &zlib, 1 << 20).is_err());
    }
}
