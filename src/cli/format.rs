//! How the CLI shows sizes, ages and tables, the way Docker does.

use chrono::{DateTime, Utc};

/// Docker's `units.HumanSize`: SI units, three significant digits ("4.26MB").
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    // Go's %.3g: three significant digits, trailing zeros dropped.
    let int_digits = if value < 10.0 {
        1
    } else if value < 100.0 {
        2
    } else {
        3
    };
    let text = format!("{:.*}", 3 - int_digits, value);
    let trimmed = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    format!("{trimmed}{}", UNITS[unit])
}

/// Docker's `units.HumanDuration` followed by " ago"; "N/A" for unknown times.
pub fn ago(when: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(when) = when else { return "N/A".to_string() };
    let secs = (now - when).num_seconds().max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    let text = match secs {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        s if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".to_string(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".to_string(),
        _ if h < 48 => format!("{h} hours"),
        _ if d < 7 * 2 => format!("{d} days"),
        _ if d < 30 * 3 => format!("{} weeks", d / 7),
        _ if d < 365 * 2 => format!("{} months", d / 30),
        _ => format!("{} years", d / 365),
    };
    format!("{text} ago")
}

/// Parse an RFC 3339 time as found in image configs and state files.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// Left-aligned columns separated by three spaces, as `docker images` prints.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Docker's `stringutils.Ellipsis`: at most `max` characters, the last an ellipsis.
pub fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    text.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(7_800), "7.8kB");
        assert_eq!(human_size(150_000_000), "150MB");
        assert_eq!(human_size(1_234_567_890), "1.23GB");
        assert_eq!(human_size(10_500), "10.5kB");
    }

    #[test]
    fn ages_like_docker() {
        let now = parse_time("2026-01-10T12:00:00Z").unwrap();
        let at = |s: &str| ago(parse_time(s), now);
        assert_eq!(at("2026-01-10T12:00:00Z"), "Less than a second ago");
        assert_eq!(at("2026-01-10T11:59:30Z"), "30 seconds ago");
        assert_eq!(at("2026-01-10T11:59:00Z"), "About a minute ago");
        assert_eq!(at("2026-01-10T11:00:00Z"), "About an hour ago");
        assert_eq!(at("2026-01-09T12:00:00Z"), "24 hours ago");
        assert_eq!(at("2026-01-01T12:00:00Z"), "9 days ago");
        assert_eq!(at("2025-12-01T12:00:00Z"), "5 weeks ago");
        assert_eq!(at("2020-01-01T00:00:00Z"), "6 years ago");
        assert_eq!(ago(None, now), "N/A");
    }

    #[test]
    fn ellipsis_like_docker() {
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abcd", 4), "abcd");
    }

    #[test]
    fn tables_align() {
        let t = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A     BB\nxxx   y\n");
    }
}
