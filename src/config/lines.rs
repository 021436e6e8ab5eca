//! Locating a key or a byte offset in a TOML text, so that errors quote the line.

use crate::error::InputError;

/// 1-based line of a dotted config key (`train.synthetic.ratio`) in a TOML text: a
/// `key = ...` line in its `[section]`, a dotted key, or an inline table that holds it.
pub fn line_of_key(source: &str, key: &str) -> Option<usize> {
    let unquote = |k: &str| k.replace(['"', '\'', ' '], "");
    let mut section = String::new();
    for (i, line) in source.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            section = unquote(header.trim_end_matches([']', ' ']));
            continue;
        }
        let Some((name, value)) = line.split_once('=') else { continue };
        let name = unquote(name);
        let full = if section.is_empty() { name } else { format!("{section}.{name}") };
        if full == key {
            return Some(i + 1);
        }
        let inner = key.strip_prefix(&format!("{full}.")).and_then(|rest| rest.rsplit('.').next());
        if let Some(leaf) = inner {
            let holds = value.trim_start().starts_with('{')
                && value
                    .split(['{', ','])
                    .any(|kv| kv.split_once('=').is_some_and(|(k, _)| unquote(k) == leaf));
            if holds {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Adds the line of the error's field (when it can be found in `source`) to its message.
pub fn with_line(source: &str, mut error: InputError) -> InputError {
    let line = error.field.as_deref().and_then(|key| line_of_key(source, key));
    if let Some(line) = line {
        let content = source.lines().nth(line - 1).unwrap_or("").trim();
        error.message = format!("line {line} (`{content}`): {}", error.message);
    }
    error
}

/// Turns a TOML error into an InputError that carries the line number and quotes the line,
/// so the offending key is named even when TOML's own message does not name it.
pub fn toml_error(text: &str, error: &toml::de::Error) -> InputError {
    let message = error.message().trim().to_string();
    match error.span() {
        Some(span) => {
            let line = line_of(text, span.start);
            let content = text.lines().nth(line - 1).unwrap_or("").trim();
            InputError::new(format!("line {line} (`{content}`): {message}"))
        }
        None => InputError::new(message),
    }
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
