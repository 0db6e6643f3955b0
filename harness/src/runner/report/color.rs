//! Colours as libtest prints them: the escape sequences come from the terminal's terminfo
//! entry (`TERM`), so the bytes are the same as libtest's on the same terminal, and there
//! are none where `TERM` names no entry.

use std::path::PathBuf;

/// The colours libtest uses, by their terminfo number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Color {
    Red = 1,
    Green = 2,
    Yellow = 3,
}

/// The sequences of one terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Palette {
    /// `setaf` expanded for each colour, when the terminal has colours.
    foreground: Option<[Vec<u8>; 3]>,
    /// `sgr0` (or `sgr`, or `op`): what ends a coloured word.
    reset: Vec<u8>,
}

impl Palette {
    /// The palette of the terminal `TERM` names, if its terminfo entry can be read.
    pub(crate) fn from_env() -> Option<Palette> {
        let term = std::env::var("TERM").ok().filter(|t| !t.is_empty())?;
        let bytes = search_dirs()
            .into_iter()
            .flat_map(|dir| {
                let first = term.chars().next().unwrap_or('x');
                [
                    dir.join(first.to_string()).join(&term),
                    dir.join(format!("{:x}", first as u32)).join(&term),
                ]
            })
            .find_map(|path| std::fs::read(path).ok())?;
        Palette::from_terminfo(&bytes)
    }

    fn from_terminfo(bytes: &[u8]) -> Option<Palette> {
        let entry = Entry::parse(bytes)?;
        let colors = entry.number(NUM_COLORS).unwrap_or(0);
        let foreground = match entry.string(STR_SETAF) {
            Some(setaf) if colors > 3 => Some([
                expand(setaf, Color::Red as i32)?,
                expand(setaf, Color::Green as i32)?,
                expand(setaf, Color::Yellow as i32)?,
            ]),
            _ => None,
        };
        let reset = [STR_SGR0, STR_SGR, STR_OP]
            .into_iter()
            .find_map(|index| entry.string(index))
            .map(|reset| expand(reset, 0))
            .unwrap_or(Some(Vec::new()))?;
        Some(Palette { foreground, reset })
    }

    /// `text` in `color`: the colour, the text, the reset.
    pub(crate) fn paint(&self, text: &str, color: Color) -> String {
        let mut bytes = Vec::new();
        if let Some(foreground) = &self.foreground {
            bytes.extend_from_slice(&foreground[color as usize - 1]);
        }
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(&self.reset);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Where terminfo entries are looked up, in ncurses' order.
fn search_dirs() -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("TERMINFO") {
        return vec![dir.into()];
    }
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".terminfo"));
    }
    match std::env::var("TERMINFO_DIRS") {
        Ok(list) => dirs.extend(list.split(':').map(|dir| match dir {
            "" => PathBuf::from("/usr/share/terminfo"),
            dir => PathBuf::from(dir),
        })),
        Err(_) => dirs
            .extend(["/etc/terminfo", "/lib/terminfo", "/usr/share/terminfo"].map(PathBuf::from)),
    }
    dirs
}

/// Indices in the compiled terminfo format (term(5)).
const NUM_COLORS: usize = 13;
const STR_SGR0: usize = 39;
const STR_SGR: usize = 131;
const STR_OP: usize = 297;
const STR_SETAF: usize = 359;

/// A compiled terminfo entry, read as term(5) describes it.
struct Entry<'a> {
    numbers: Vec<i32>,
    offsets: Vec<i16>,
    table: &'a [u8],
}

impl<'a> Entry<'a> {
    fn parse(bytes: &'a [u8]) -> Option<Entry<'a>> {
        let word = |at: usize| -> Option<i16> {
            Some(i16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
        };
        let number_width = match word(0)? {
            0o432 => 2,
            0o1036 => 4,
            _ => return None,
        };
        let count = |at: usize| word(at).map(|n| n.max(0) as usize);
        let (names, bools, nums, strings, table_len) =
            (count(2)?, count(4)?, count(6)?, count(8)?, count(10)?);
        let mut at = 12 + names + bools;
        at += at % 2;
        let mut numbers = Vec::with_capacity(nums);
        for i in 0..nums {
            let start = at + i * number_width;
            let raw = bytes.get(start..start + number_width)?;
            numbers.push(match number_width {
                2 => i32::from(i16::from_le_bytes(raw.try_into().ok()?)),
                _ => i32::from_le_bytes(raw.try_into().ok()?),
            });
        }
        at += nums * number_width;
        let offsets = (0..strings)
            .map(|i| word(at + 2 * i))
            .collect::<Option<Vec<i16>>>()?;
        at += 2 * strings;
        let table = bytes.get(at..at + table_len)?;
        Some(Entry {
            numbers,
            offsets,
            table,
        })
    }

    fn number(&self, index: usize) -> Option<i32> {
        self.numbers.get(index).copied().filter(|n| *n >= 0)
    }

    fn string(&self, index: usize) -> Option<&'a [u8]> {
        let start = usize::try_from(*self.offsets.get(index)?).ok()?;
        let rest = self.table.get(start..)?;
        Some(&rest[..rest.iter().position(|&b| b == 0)?])
    }
}

/// Expands a terminfo string with `param` as `%p1`: the arithmetic, comparison and
/// if-then-else operators that colour capabilities use. `None` for anything else.
fn expand(cap: &[u8], param: i32) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack: Vec<i32> = Vec::new();
    let mut i = 0;
    // Skipping the branch not taken: `Some(depth)` of nested `%?` while skipping.
    let mut skipping: Option<(usize, bool)> = None;
    while i < cap.len() {
        let byte = cap[i];
        i += 1;
        if byte != b'%' {
            if skipping.is_none() {
                out.push(byte);
            }
            continue;
        }
        let op = *cap.get(i)?;
        i += 1;
        if let Some((depth, to_end)) = skipping {
            match op {
                b'?' => skipping = Some((depth + 1, to_end)),
                b';' if depth == 0 => skipping = None,
                b';' => skipping = Some((depth - 1, to_end)),
                b'e' if depth == 0 && !to_end => skipping = None,
                _ => {}
            }
            continue;
        }
        match op {
            b'%' => out.push(b'%'),
            b'p' => {
                let n = *cap.get(i)?;
                i += 1;
                stack.push(if n == b'1' { param } else { 0 });
            }
            b'd' => out.extend_from_slice(stack.pop()?.to_string().as_bytes()),
            b'{' => {
                let end = i + cap[i..].iter().position(|&b| b == b'}')?;
                stack.push(std::str::from_utf8(&cap[i..end]).ok()?.parse().ok()?);
                i = end + 1;
            }
            b'\'' => {
                stack.push(i32::from(*cap.get(i)?));
                i += 2;
            }
            b'+' | b'-' | b'*' | b'/' | b'm' | b'<' | b'>' | b'=' | b'&' | b'|' | b'A' | b'O' => {
                let (b, a) = (stack.pop()?, stack.pop()?);
                stack.push(match op {
                    b'+' => a.wrapping_add(b),
                    b'-' => a.wrapping_sub(b),
                    b'*' => a.wrapping_mul(b),
                    b'/' => a.checked_div(b)?,
                    b'm' => a.checked_rem(b)?,
                    b'<' => i32::from(a < b),
                    b'>' => i32::from(a > b),
                    b'=' => i32::from(a == b),
                    b'&' => a & b,
                    b'|' => a | b,
                    b'A' => i32::from(a != 0 && b != 0),
                    _ => i32::from(a != 0 || b != 0),
                });
            }
            b'!' => {
                let a = stack.pop()?;
                stack.push(i32::from(a == 0));
            }
            b'?' | b';' => {}
            b't' => {
                if stack.pop()? == 0 {
                    skipping = Some((0, false));
                }
            }
            b'e' => skipping = Some((0, true)),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_capabilities_expand_as_ncurses_does() {
        let xterm_256 = b"\x1b[%?%p1%{8}%<%t3%p1%d%e%p1%{16}%<%t9%p1%{8}%-%d%e38;5;%p1%d%;m";
        assert_eq!(expand(xterm_256, 2).unwrap(), b"\x1b[32m");
        assert_eq!(expand(xterm_256, 9).unwrap(), b"\x1b[91m");
        assert_eq!(expand(xterm_256, 100).unwrap(), b"\x1b[38;5;100m");
        assert_eq!(expand(b"\x1b[3%p1%dm", 1).unwrap(), b"\x1b[31m");
        assert_eq!(expand(b"\x1b(B\x1b[m", 0).unwrap(), b"\x1b(B\x1b[m");
        assert_eq!(expand(b"%x", 0), None);
    }

    #[test]
    fn a_compiled_entry_gives_its_colours_and_reset() {
        // A minimal legacy-format entry: 14 numbers (colors = 8), setaf and sgr0.
        let mut entry = Vec::new();
        let names = b"t|test\0";
        let table = b"\x1b[3%p1%dm\0\x1b[0m\0";
        for n in [0o432, names.len() as i16, 0, 14, 360, table.len() as i16] {
            entry.extend_from_slice(&n.to_le_bytes());
        }
        entry.extend_from_slice(names);
        if entry.len() % 2 == 1 {
            entry.push(0);
        }
        for i in 0..14i16 {
            entry.extend_from_slice(&(if i == 13 { 8 } else { -1i16 }).to_le_bytes());
        }
        for i in 0..360 {
            let offset: i16 = match i {
                STR_SETAF => 0,
                STR_SGR0 => 10,
                _ => -1,
            };
            entry.extend_from_slice(&offset.to_le_bytes());
        }
        entry.extend_from_slice(table);
        let palette = Palette::from_terminfo(&entry).unwrap();
        assert_eq!(palette.paint("ok", Color::Green), "\x1b[32mok\x1b[0m");
    }
}
