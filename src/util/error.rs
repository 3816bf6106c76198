//! Rendering an error with its chain of causes, the one way every caller does it.

use std::error::Error;

/// The messages of `e` and of its causes, outermost first. A cause whose message the ones before
/// it already contain is left out: wrappers often repeat their source's text.
pub fn messages(e: &dyn Error) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.iter().any(|m| m.contains(&text)) {
            out.push(text);
        }
        source = cause.source();
    }
    out
}

/// `e` and its causes on one line, joined by `: `.
pub fn one_line(e: &dyn Error) -> String {
    messages(e).join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct E {
        text: String,
        #[source]
        source: Option<Box<E>>,
    }

    fn e(text: &str, source: Option<E>) -> E {
        E {
            text: text.into(),
            source: source.map(Box::new),
        }
    }

    #[test]
    fn causes_in_order_without_repeats() {
        let err = e(
            "upload failed",
            Some(e(
                "connection reset: os error 104",
                Some(e("os error 104", None)),
            )),
        );
        assert_eq!(
            messages(&err),
            vec!["upload failed", "connection reset: os error 104"]
        );
        assert_eq!(
            one_line(&err),
            "upload failed: connection reset: os error 104"
        );
        assert_eq!(one_line(&e("alone", None)), "alone");
    }
}
