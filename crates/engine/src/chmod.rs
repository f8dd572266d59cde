//! `COPY --chmod` / `ADD --chmod` values, as BuildKit interprets them.
//!
//! BuildKit (dockerfile2llb `convert_copy.go`) first tries the value as an octal number
//! (`strconv.ParseUint(v, 8, 32)`, at most `07777`); anything else is a symbolic mode in
//! chmod(1) syntax, parsed by `tonistiigi/dchapes-mode` (a port of BSD `setmode(3)`) and applied
//! to every copied file and directory's existing mode. Values that look numeric but are not valid
//! octal get BuildKit's "should be octal" error.
//!
//! Symbolic syntax: comma-separated clauses `[ugoa]*[+-=][rwxXst]*` (operators may repeat:
//! `u+r-w`), with permission copying (`g=u`, `go=u-w`). `X` sets execute only on directories or
//! when some execute bit is already set; `s` and `t` are ignored for `o` alone.

use crate::error::Error;

const IS_UID: u16 = 0o4000;
const IS_GID: u16 = 0o2000;
const IS_TXT: u16 = 0o1000;
const IRWXU: u16 = 0o700;
const IRWXG: u16 = 0o070;
const IRWXO: u16 = 0o007;
const IR_USER: u16 = 0o400;
const IR_GROUP: u16 = 0o040;
const IR_OTHER: u16 = 0o004;
const IW_ALL: u16 = 0o222;
const IX_ALL: u16 = 0o111;
const IR_ALL: u16 = 0o444;
const STANDARD_BITS: u16 = IS_UID | IS_GID | IRWXU | IRWXG | IRWXO;

const CMD2_CLEAR: u8 = 1;
const CMD2_SET: u8 = 2;
const CMD2_GBITS: u8 = 4;
const CMD2_OBITS: u8 = 8;
const CMD2_UBITS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BitCmd {
    cmd: u8,
    cmd2: u8,
    bits: u16,
}

/// A parsed symbolic mode: a list of bit operations (BSD `setmode` "bitcmd"s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeSet {
    cmds: Vec<BitCmd>,
}

/// A parsed `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// An absolute octal mode (`0` to `07777`), replacing the permission bits.
    Octal(u32),
    /// A symbolic mode applied to each entry's existing mode.
    Symbolic(ModeSet),
}

fn octal_error(value: &str) -> Error {
    Error::InvalidChmod {
        value: value.to_string(),
        reason:
            "it should be an octal string between 0 and 07777, or a symbolic mode such as u+x,go=rX"
                .into(),
    }
}

fn syntax_error(value: &str, why: &str) -> Error {
    Error::InvalidChmod {
        value: value.to_string(),
        reason: format!("invalid symbolic mode: {why}"),
    }
}

/// Parse a `--chmod` value the way BuildKit does.
pub fn parse_chmod(value: &str) -> Result<Chmod, Error> {
    if !value.is_empty() && value.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        // strconv.ParseUint(v, 8, 32)
        return match u32::from_str_radix(value, 8) {
            Ok(v) if v <= 0o7777 => Ok(Chmod::Octal(v)),
            _ => Err(octal_error(value)),
        };
    }
    if value.is_empty() {
        return Err(syntax_error(value, "empty value"));
    }
    if value.as_bytes()[0].is_ascii_digit() {
        // mode.Parse takes a leading digit as a number; only a strconv error can follow here,
        // which BuildKit reports as the "octal" error.
        return Err(octal_error(value));
    }
    parse_symbolic(value).map(Chmod::Symbolic)
}

impl Chmod {
    /// The new permission bits (`0o7777` mask) for an entry whose current mode is `mode`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(m) => m & 0o7777,
            Chmod::Symbolic(set) => set.apply(mode, is_dir),
        }
    }
}

fn add_cmd(cmds: &mut Vec<BitCmd>, op: u8, who: u16, oparg: u16, mask: u16) {
    let mut op = op;
    if op == b'=' {
        cmds.push(BitCmd {
            cmd: b'-',
            cmd2: 0,
            bits: if who != 0 { who } else { STANDARD_BITS },
        });
        op = b'+';
    }
    match op {
        b'+' | b'-' | b'X' => {
            cmds.push(BitCmd {
                cmd: op,
                cmd2: 0,
                bits: if who != 0 { who & oparg } else { mask & oparg },
            });
        }
        b'u' | b'g' | b'o' => {
            let mut c = BitCmd {
                cmd: op,
                cmd2: 0,
                bits: 0,
            };
            if who != 0 {
                if who & IR_USER != 0 {
                    c.cmd2 |= CMD2_UBITS;
                }
                if who & IR_GROUP != 0 {
                    c.cmd2 |= CMD2_GBITS;
                }
                if who & IR_OTHER != 0 {
                    c.cmd2 |= CMD2_OBITS;
                }
                c.bits = !0;
            } else {
                c.cmd2 = CMD2_UBITS | CMD2_GBITS | CMD2_OBITS;
                c.bits = mask;
            }
            c.cmd2 |= match oparg as u8 {
                b'+' => CMD2_SET,
                b'-' => CMD2_CLEAR,
                _ => CMD2_SET | CMD2_CLEAR,
            };
            cmds.push(c);
        }
        _ => unreachable!("add_cmd op"),
    }
}

/// The "who" letters (`ugoa`) of a clause starting at `*i`, as permission bits; `*i` ends
/// on the operator.
fn parse_who(value: &str, i: &mut usize) -> Result<u16, Error> {
    let mut who: u16 = 0;
    loop {
        let Some(&c) = value.as_bytes().get(*i) else {
            return Err(syntax_error(value, "missing operator (+, - or =)"));
        };
        match c {
            b'a' => who |= STANDARD_BITS,
            b'u' => who |= IS_UID | IRWXU,
            b'g' => who |= IS_GID | IRWXG,
            b'o' => who |= IRWXO,
            _ => return Ok(who),
        }
        *i += 1;
    }
}

/// BSD `setmode` for symbolic modes (umask 0, as BuildKit uses).
fn parse_symbolic(value: &str) -> Result<ModeSet, Error> {
    let s = value.as_bytes();
    let mask: u16 = !0; // ^umask with umask 0
    let mut cmds = Vec::new();
    let mut i = 0usize;
    let mut equal_op_done = false;
    'clauses: loop {
        let mut who = parse_who(value, &mut i)?;
        loop {
            // getop
            let op = s[i];
            i += 1;
            match op {
                b'+' | b'-' => {}
                b'=' => equal_op_done = false,
                _ => {
                    return Err(syntax_error(
                        value,
                        &format!(
                            "unexpected {:?} (expected who [ugoa], then +, - or =)",
                            op as char
                        ),
                    ))
                }
            }
            who &= !IS_TXT;
            let (mut perm, mut perm_x) = (0u16, 0u16);
            loop {
                let b = s.get(i).copied().unwrap_or(0);
                match b {
                    b'r' => perm |= IR_ALL,
                    b's' => {
                        // If only "other" bits ignore set-id.
                        if who == 0 || who & !IRWXO != 0 {
                            perm |= IS_UID | IS_GID;
                        }
                    }
                    b't' => {
                        // If only "other" bits ignore sticky.
                        if who == 0 || who & !IRWXO != 0 {
                            who |= IS_TXT;
                            perm |= IS_TXT;
                        }
                    }
                    b'w' => perm |= IW_ALL,
                    b'X' => {
                        if op != b'-' {
                            perm_x = IX_ALL;
                        } else {
                            perm |= IX_ALL;
                        }
                    }
                    b'x' => perm |= IX_ALL,
                    b'u' | b'g' | b'o' => {
                        // flush the partial mode, then copy bits from another class
                        if perm != 0 {
                            add_cmd(&mut cmds, op, who, perm, mask);
                            perm = 0;
                        }
                        if op == b'=' {
                            equal_op_done = true;
                        }
                        if perm_x != 0 {
                            add_cmd(&mut cmds, b'X', who, perm_x, mask);
                            perm_x = 0;
                        }
                        add_cmd(&mut cmds, b, who, op as u16, mask);
                    }
                    _ => {
                        if perm != 0 || (op == b'=' && !equal_op_done) {
                            if op == b'=' {
                                equal_op_done = true;
                            }
                            add_cmd(&mut cmds, op, who, perm, mask);
                        }
                        if perm_x != 0 {
                            add_cmd(&mut cmds, b'X', who, perm_x, mask);
                        }
                        break;
                    }
                }
                i += 1;
            }
            if i >= s.len() {
                break 'clauses;
            }
            if s[i] != b',' {
                continue; // goto getop
            }
            i += 1;
            continue 'clauses;
        }
    }
    Ok(ModeSet {
        cmds: compress(cmds),
    })
}

/// Merge runs of `+`, `-`, `X` into at most one of each (BSD `compress_mode`).
fn compress(cmds: Vec<BitCmd>) -> Vec<BitCmd> {
    let mut out = Vec::with_capacity(cmds.len());
    let mut i = 0;
    while i < cmds.len() {
        let c = cmds[i];
        if !matches!(c.cmd, b'+' | b'-' | b'X') {
            out.push(c);
            i += 1;
            continue;
        }
        let (mut set, mut clr, mut x) = (0u16, 0u16, 0u16);
        while i < cmds.len() {
            let c = cmds[i];
            match c.cmd {
                b'-' => {
                    clr |= c.bits;
                    set &= !c.bits;
                    x &= !c.bits;
                }
                b'+' => {
                    set |= c.bits;
                    clr &= !c.bits;
                    x &= !c.bits;
                }
                b'X' => x |= c.bits & !set,
                _ => break,
            }
            i += 1;
        }
        for (cmd, bits) in [(b'-', clr), (b'+', set), (b'X', x)] {
            if bits != 0 {
                out.push(BitCmd { cmd, cmd2: 0, bits });
            }
        }
    }
    out
}

impl ModeSet {
    /// Apply to an entry's current permission bits (setuid/setgid/sticky included; other bits of
    /// `mode` are ignored). Returns the new `0o7777` bits.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let omode = (mode & 0o7777) as u16;
        let mut new = omode;
        for c in &self.cmds {
            let common = |new: &mut u16, value: u16| {
                if c.cmd2 & CMD2_CLEAR != 0 {
                    let clr = if c.cmd2 & CMD2_SET != 0 { IRWXO } else { value };
                    if c.cmd2 & CMD2_UBITS != 0 {
                        *new &= !((clr << 6) & c.bits);
                    }
                    if c.cmd2 & CMD2_GBITS != 0 {
                        *new &= !((clr << 3) & c.bits);
                    }
                    if c.cmd2 & CMD2_OBITS != 0 {
                        *new &= !(clr & c.bits);
                    }
                }
                if c.cmd2 & CMD2_SET != 0 {
                    if c.cmd2 & CMD2_UBITS != 0 {
                        *new |= (value << 6) & c.bits;
                    }
                    if c.cmd2 & CMD2_GBITS != 0 {
                        *new |= (value << 3) & c.bits;
                    }
                    if c.cmd2 & CMD2_OBITS != 0 {
                        *new |= value & c.bits;
                    }
                }
            };
            match c.cmd {
                b'u' => {
                    let v = (new & IRWXU) >> 6;
                    common(&mut new, v)
                }
                b'g' => {
                    let v = (new & IRWXG) >> 3;
                    common(&mut new, v)
                }
                b'o' => {
                    let v = new & IRWXO;
                    common(&mut new, v)
                }
                b'+' => new |= c.bits,
                b'-' => new &= !c.bits,
                b'X' if omode & IX_ALL != 0 || is_dir => new |= c.bits,
                _ => {}
            }
        }
        (new & 0o7777) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str, mode: u32, dir: bool) -> u32 {
        parse_chmod(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .apply(mode, dir)
    }

    #[test]
    fn octal() {
        assert_eq!(parse_chmod("755").unwrap(), Chmod::Octal(0o755));
        assert_eq!(parse_chmod("0644").unwrap(), Chmod::Octal(0o644));
        assert_eq!(parse_chmod("4755").unwrap(), Chmod::Octal(0o4755));
        assert_eq!(parse_chmod("07777").unwrap(), Chmod::Octal(0o7777));
        assert_eq!(parse_chmod("0").unwrap(), Chmod::Octal(0));
        assert_eq!(parse_chmod("000000644").unwrap(), Chmod::Octal(0o644));
        assert_eq!(parse_chmod("755").unwrap().apply(0o100644, false), 0o755);
        for bad in ["17777", "789", "8", "0o755", "1e3", "99999999999999999"] {
            let e = parse_chmod(bad).unwrap_err();
            assert!(e.to_string().contains("octal"), "{bad}: {e}");
        }
    }

    #[test]
    fn symbolic() {
        assert_eq!(sym("u=rwx,go=rx", 0o600, false), 0o755);
        assert_eq!(sym("+x", 0o644, false), 0o755);
        assert_eq!(sym("a-w", 0o666, false), 0o444);
        assert_eq!(sym("g+s", 0o755, true), 0o2755);
        assert_eq!(sym("u+s", 0o755, false), 0o4755);
        assert_eq!(sym("o+s", 0o755, false), 0o755); // set-id ignored for "o" alone
        assert_eq!(sym("+t", 0o755, true), 0o1755);
        assert_eq!(sym("o+t", 0o755, true), 0o755);
        assert_eq!(sym("go-w", 0o777, false), 0o755);
        assert_eq!(sym("go=", 0o777, false), 0o700);
        assert_eq!(sym("=rw,+X", 0o755, false), 0o777); // execute kept: X on an executable
        assert_eq!(sym("=rw,+X", 0o644, false), 0o666);
        assert_eq!(sym("=rw,+X", 0o600, true), 0o777);
        assert_eq!(sym("a+X", 0o644, false), 0o644);
        assert_eq!(sym("a+X", 0o644, true), 0o755);
        assert_eq!(sym("a+X", 0o744, false), 0o755);
        assert_eq!(sym("go=u-w", 0o750, false), 0o755);
        assert_eq!(sym("u=g", 0o640, false), 0o440);
        assert_eq!(sym("g=u,o=", 0o764, false), 0o770);
        assert_eq!(sym("u+r-w", 0o200, false), 0o400);
        assert_eq!(sym("=", 0o4777, false), 0);
        assert_eq!(sym("a=r", 0o1777, true), 0o1444); // '=' does not clear sticky without 't'
        assert_eq!(sym("u-s", 0o4755, false), 0o755);
        assert_eq!(sym("ug+w,o-r", 0o444, false), 0o660);
    }

    #[test]
    fn symbolic_errors() {
        for bad in [
            "", "u", "ugo", "x", "u+z", "+x,", "u+x,,g+w", "abc", "u+x;g", "-x,",
        ] {
            match parse_chmod(bad) {
                Err(Error::InvalidChmod { value, reason }) => {
                    assert_eq!(value, bad);
                    assert!(!reason.is_empty());
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
