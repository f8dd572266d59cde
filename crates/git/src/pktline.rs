//! Git's pkt-line framing (four hex digits of length, then the payload; `0000` flush, `0001` delimiter, `0002`
//! response end) and side-band-64k demultiplexing of a pack stream (band 1 data, 2 progress, 3 a fatal error).

use crate::Error;

/// The largest pkt-line git allows (65520 bytes with its header).
pub const MAX_PKT: usize = 65520;

/// One framed packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Pkt<'a> {
    Data(&'a [u8]),
    Flush,
    Delim,
    End,
}

/// A packet holding `data`.
pub fn data(out: &mut Vec<u8>, data: &[u8]) {
    out.extend(format!("{:04x}", data.len() + 4).as_bytes());
    out.extend(data);
}

/// A packet holding the text line `line` (a newline is added, as git's writers do).
pub fn line(out: &mut Vec<u8>, line: &str) {
    data(out, format!("{line}\n").as_bytes());
}

pub fn flush(out: &mut Vec<u8>) {
    out.extend(b"0000");
}

pub fn delim(out: &mut Vec<u8>) {
    out.extend(b"0001");
}

/// Reads packets from a whole response body; `what` names it in errors.
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], what: &'a str) -> Reader<'a> {
        Reader { buf, at: 0, what }
    }

    pub fn bad(&self, msg: impl Into<String>) -> Error {
        Error::Bad {
            what: self.what.to_string(),
            msg: msg.into(),
        }
    }

    /// Whether the whole body was read.
    pub fn at_end(&self) -> bool {
        self.at >= self.buf.len()
    }

    /// The next packet, an error for a truncated or malformed one, `None` at the end of the body. A packet that
    /// is an `ERR message` line (what a server sends instead of an answer) becomes an error carrying its message.
    pub fn packet(&mut self) -> Result<Option<Pkt<'a>>, Error> {
        if self.at_end() {
            return Ok(None);
        }
        let head = self
            .buf
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.bad("a pkt-line header is truncated"))?;
        let len = std::str::from_utf8(head)
            .ok()
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .ok_or_else(|| {
                self.bad(format!(
                    "{:?} at byte {} is not a pkt-line length",
                    String::from_utf8_lossy(head),
                    self.at
                ))
            })?;
        let pkt = match len {
            0 => Pkt::Flush,
            1 => Pkt::Delim,
            2 => Pkt::End,
            3 => return Err(self.bad(format!("pkt-line length 3 at byte {}", self.at))),
            n if n > MAX_PKT => {
                return Err(self.bad(format!(
                    "a pkt-line of {n} bytes (git's limit is {MAX_PKT})"
                )))
            }
            n => {
                let body = self.buf.get(self.at + 4..self.at + n).ok_or_else(|| {
                    self.bad(format!("a pkt-line at byte {} is truncated", self.at))
                })?;
                if let Some(msg) = body.strip_prefix(b"ERR ") {
                    return Err(self.bad(format!(
                        "the server says: {}",
                        String::from_utf8_lossy(msg).trim_end()
                    )));
                }
                Pkt::Data(body)
            }
        };
        self.at += len.max(4);
        Ok(Some(pkt))
    }

    /// The next packet as a text line (its newline removed); `None` for a flush or delimiter, which `want` says
    /// is the only special packet allowed there.
    pub fn text(&mut self) -> Result<Option<Pkt<'a>>, Error> {
        match self.packet()? {
            None => Err(self.bad("the answer ends early")),
            Some(Pkt::Data(d)) => Ok(Some(Pkt::Data(d.strip_suffix(b"\n").unwrap_or(d)))),
            Some(p) => Ok(Some(p)),
        }
    }
}

/// The text of a line packet.
pub fn utf8<'a>(r: &Reader<'_>, d: &'a [u8]) -> Result<&'a str, Error> {
    std::str::from_utf8(d).map_err(|_| r.bad("a line is not UTF-8 text"))
}

/// Side-band-64k packets until a flush: band 1 appended to `pack`, band 2 (progress) handed to `progress` line by
/// line, band 3 an error. `limit` bounds the pack's bytes.
pub fn demux(
    r: &mut Reader<'_>,
    pack: &mut Vec<u8>,
    progress: &mut Vec<String>,
    limit: u64,
) -> Result<(), Error> {
    loop {
        match r.packet()? {
            None | Some(Pkt::Flush) | Some(Pkt::End) => return Ok(()),
            Some(Pkt::Delim) => return Err(r.bad("a delimiter inside the pack data")),
            Some(Pkt::Data(d)) => match d.split_first() {
                Some((1, rest)) => {
                    pack.extend_from_slice(rest);
                    if pack.len() as u64 > limit {
                        return Err(Error::TooLarge {
                            what: "the pack the server sent".into(),
                            limit,
                        });
                    }
                }
                Some((2, rest)) => {
                    for m in String::from_utf8_lossy(rest).split(['\r', '\n']) {
                        if !m.trim().is_empty() {
                            progress.push(m.trim_end().to_string());
                        }
                    }
                }
                Some((3, rest)) => {
                    return Err(r.bad(format!(
                        "the server says: {}",
                        String::from_utf8_lossy(rest).trim_end()
                    )))
                }
                _ => return Err(r.bad("a pack packet with no side-band channel 1, 2 or 3")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_bad_framing_is_refused() {
        let mut b = Vec::new();
        line(&mut b, "hello");
        delim(&mut b);
        data(&mut b, b"\x01PACK");
        data(&mut b, b"\x02Counting objects\rdone\n");
        flush(&mut b);
        let mut r = Reader::new(&b, "answer");
        assert_eq!(r.text().unwrap(), Some(Pkt::Data(b"hello")));
        assert_eq!(r.packet().unwrap(), Some(Pkt::Delim));
        let (mut pack, mut progress) = (Vec::new(), Vec::new());
        demux(&mut r, &mut pack, &mut progress, 100).unwrap();
        assert_eq!(pack, b"PACK");
        assert_eq!(progress, ["Counting objects", "done"]);
        assert!(r.at_end());
        for bad in [&b"00"[..], b"zzzz", b"0003", b"0009abc", b"fff0"] {
            assert!(Reader::new(bad, "x").packet().is_err(), "{bad:?}");
        }
        let mut err = Vec::new();
        line(&mut err, "ERR access denied");
        let e = Reader::new(&err, "x").packet().unwrap_err().to_string();
        assert!(e.contains("access denied"), "{e}");
        let mut band3 = Vec::new();
        data(&mut band3, b"\x03no space");
        let e = demux(&mut Reader::new(&band3, "x"), &mut pack, &mut progress, 100).unwrap_err();
        assert!(e.to_string().contains("no space"), "{e}");
        let mut big = Vec::new();
        data(&mut big, &[1u8; 200]);
        let e = demux(
            &mut Reader::new(&big, "x"),
            &mut Vec::new(),
            &mut progress,
            100,
        );
        assert!(matches!(e, Err(Error::TooLarge { .. })), "{e:?}");
    }
}
