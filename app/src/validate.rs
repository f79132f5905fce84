//! Input rules for account fields, run in the browser (to answer at once) and on the server
//! (to be sure). Each function returns the normalised value or an [`ApiError`] naming the field.
use crate::error::ApiError;
use crate::model::limits::*;

/// Usernames are 3–32 of `[a-z0-9_]`. Upper-case letters are folded to lower case first, so
/// `Alice` and `alice` are the same account name.
pub fn username(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim().to_ascii_lowercase();
    let len = name.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        return Err(ApiError::invalid(
            "username",
            format!("A username has {USERNAME_MIN} to {USERNAME_MAX} characters."),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(ApiError::invalid(
            "username",
            "A username may only contain letters a-z, digits and underscores.",
        ));
    }
    Ok(name)
}

/// Whether `text` holds a control character other than a line break or a tab (NUL, escape
/// sequences, bidirectional controls are not among these: they are format characters).
pub fn has_controls_beyond_breaks(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// One line of free text: trimmed, at most `max` characters, no control characters at all.
/// `rule` is the sentence that says so for `field`.
pub fn line(field: &str, raw: &str, max: usize, rule: &str) -> Result<String, ApiError> {
    let text = raw.trim();
    if text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(ApiError::invalid(field, rule));
    }
    Ok(text.to_owned())
}

/// Text that may span lines: trimmed, at most `max` characters, no control characters but
/// line breaks and tabs.
pub fn lines(field: &str, raw: &str, max: usize, rule: &str) -> Result<String, ApiError> {
    let text = raw.trim();
    if text.chars().count() > max || has_controls_beyond_breaks(text) {
        return Err(ApiError::invalid(field, rule));
    }
    Ok(text.to_owned())
}

/// A search query: one line of at most `max` characters (empty is allowed: no results).
pub fn query(raw: &str, max: usize) -> Result<String, ApiError> {
    line(
        "query",
        raw,
        max,
        &format!("A search is one line of at most {max} characters."),
    )
}

/// Nicknames are 1–32 characters after trimming, without control characters.
pub fn nickname(raw: &str) -> Result<String, ApiError> {
    let nick = raw.trim();
    let len = nick.chars().count();
    if len == 0 || len > NICKNAME_MAX {
        return Err(ApiError::invalid(
            "nickname",
            format!("A nickname has 1 to {NICKNAME_MAX} characters."),
        ));
    }
    if nick.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "nickname",
            "A nickname cannot contain control characters.",
        ));
    }
    Ok(nick.to_owned())
}

/// Passwords are 8–128 characters, taken exactly as typed.
pub fn password(field: &str, raw: &str) -> Result<(), ApiError> {
    let len = raw.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        return Err(ApiError::invalid(
            field,
            format!("A password has {PASSWORD_MIN} to {PASSWORD_MAX} characters."),
        ));
    }
    Ok(())
}

/// A signature is free text up to 100 characters on one line.
pub fn signature(raw: &str) -> Result<String, ApiError> {
    let text = raw.trim();
    if text.chars().count() > SIGNATURE_MAX {
        return Err(ApiError::invalid(
            "signature",
            format!("A signature has at most {SIGNATURE_MAX} characters."),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "signature",
            "A signature is a single line of text.",
        ));
    }
    Ok(text.to_owned())
}

/// A mobile number: empty, or up to 20 of digits, spaces, `+`, `-`, with at least 5 digits.
pub fn mobile(raw: &str) -> Result<String, ApiError> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(String::new());
    }
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let allowed = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '));
    if !allowed || digits < 5 || text.chars().count() > MOBILE_MAX {
        return Err(ApiError::invalid(
            "mobile",
            "A mobile number has 5 to 20 digits and may contain +, - and spaces.",
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_fold_case_and_reject_other_characters() {
        assert_eq!(username(" Alice_01 ").as_deref(), Ok("alice_01"));
        assert!(username("ab").is_err());
        assert!(username(&"a".repeat(33)).is_err());
        assert!(username("bad-name").is_err());
        assert!(username("名字名字").is_err());
    }

    #[test]
    fn nicknames_count_characters_not_bytes() {
        assert!(nickname(&"好".repeat(32)).is_ok());
        assert!(nickname(&"好".repeat(33)).is_err());
        assert!(nickname("   ").is_err());
        assert!(nickname("a\nb").is_err());
    }

    #[test]
    fn control_characters_are_refused_in_text_fields() {
        assert!(line("memo", "hi\0there", 100, "x").is_err());
        assert!(line("memo", "two\nlines", 100, "x").is_err());
        assert_eq!(line("memo", "  ok  ", 100, "x").as_deref(), Ok("ok"));
        assert!(lines("description", "a\nb\tc", 200, "x").is_ok());
        assert!(lines("description", "bell\u{7}", 200, "x").is_err());
        assert!(lines("description", "esc\u{1b}[31m", 200, "x").is_err());
        assert!(lines("description", "c1\u{85}more", 200, "x").is_err());
        assert!(query("ab\0", 32).is_err());
        assert!(query(&"x".repeat(33), 32).is_err());
    }

    #[test]
    fn passwords_and_mobiles() {
        assert!(password("password", "1234567").is_err());
        assert!(password("password", "12345678").is_ok());
        assert!(password("password", &"x".repeat(129)).is_err());
        assert_eq!(mobile("").as_deref(), Ok(""));
        assert!(mobile("+86 138-0000-0000").is_ok());
        assert!(mobile("call me").is_err());
    }
}
