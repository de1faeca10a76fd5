//! How a user's string (an arch, a name, a file's field) is echoed in an
//! error: one line, bounded.

/// Longest part of a user's string (an arch, a name) echoed in an error.
pub const SHOWN_CHARS: usize = 120;

/// A user's string as an error shows it: control characters escaped (the
/// error stays one line) and cut to [`SHOWN_CHARS`] characters with "..."
/// and the total length.
pub fn shorten(s: &str) -> String {
    let total = s.chars().count();
    let mut out = String::new();
    for c in s.chars().take(SHOWN_CHARS) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if total > SHOWN_CHARS {
        out.push_str(&format!("... ({total} chars)"));
    }
    out
}
