//! Address normalisation, shared by preparation (exclusions) and proofs.

use herald_plugin_api::Normalisation;

/// Why an address cannot be used; maps onto the exclusion reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressProblem {
    /// The address is empty or missing (`no_address`).
    #[error("no address")]
    Missing,
    /// The address is malformed (`invalid_address`).
    #[error("invalid address: {0}")]
    Invalid(String),
}

impl AddressProblem {
    /// The exclusion reason of the run vocabulary: `no_address` or `invalid_address`.
    pub fn reason(&self) -> &'static str {
        match self {
            AddressProblem::Missing => "no_address",
            AddressProblem::Invalid(_) => "invalid_address",
        }
    }
}

/// Normalises `raw` for a channel: e-mail lower-cased and shape-checked,
/// E.164 `+` and 8 to 15 digits once spaces, dashes, dots and parentheses
/// are removed, tokens non-empty without white space.
pub fn normalise_address(n: Normalisation, raw: &str) -> Result<String, AddressProblem> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(AddressProblem::Missing);
    }
    let invalid = |why: &str| Err(AddressProblem::Invalid(why.to_string()));
    match n {
        Normalisation::Email => {
            let lower = trimmed.to_lowercase();
            if lower.len() > 254 || lower.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return invalid("e-mail address with white space or too long");
            }
            let Some((local, domain)) = lower.rsplit_once('@') else {
                return invalid("e-mail address without `@`");
            };
            let domain_ok = domain.contains('.')
                && !domain.starts_with(['.', '-'])
                && !domain.ends_with(['.', '-'])
                && !domain.contains("..")
                && domain
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
            if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
                return invalid("e-mail address not shaped like `name@domain.tld`");
            }
            Ok(lower)
        }
        Normalisation::E164 => {
            let compact: String = trimmed
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
                .collect();
            let Some(digits) = compact.strip_prefix('+') else {
                return invalid("phone number without `+` and country code (E.164)");
            };
            if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return invalid("phone number must be `+` and 8 to 15 digits (E.164)");
            }
            Ok(compact)
        }
        Normalisation::Token => {
            if trimmed.chars().any(char::is_whitespace) {
                return invalid("token with white space");
            }
            Ok(trimmed.to_string())
        }
        Normalisation::None => Ok(trimmed.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_shape_checked() {
        let n = Normalisation::Email;
        assert_eq!(
            normalise_address(n, " Ana@Shop.Example "),
            Ok("ana@shop.example".into())
        );
        assert!(matches!(
            normalise_address(n, "ana.shop.example"),
            Err(AddressProblem::Invalid(_))
        ));
        assert!(matches!(
            normalise_address(n, "ana@localhost"),
            Err(AddressProblem::Invalid(_))
        ));
        assert!(matches!(
            normalise_address(n, "a b@x.example"),
            Err(AddressProblem::Invalid(_))
        ));
        assert_eq!(normalise_address(n, "  "), Err(AddressProblem::Missing));
        assert_eq!(AddressProblem::Missing.reason(), "no_address");
    }

    #[test]
    fn phones_become_e164() {
        let n = Normalisation::E164;
        assert_eq!(
            normalise_address(n, "+33 6 12-34.56(78)"),
            Ok("+33612345678".into())
        );
        let err = normalise_address(n, "0612345678").unwrap_err();
        assert_eq!(err.reason(), "invalid_address");
        assert!(normalise_address(n, "+1234").is_err());
        assert!(normalise_address(n, "+1234567890123456").is_err());
        assert!(normalise_address(n, "+3361234567a").is_err());
    }

    #[test]
    fn tokens_are_non_empty_without_white_space() {
        let n = Normalisation::Token;
        assert_eq!(normalise_address(n, " abc:DEF "), Ok("abc:DEF".into()));
        assert!(normalise_address(n, "ab c").is_err());
        assert_eq!(
            normalise_address(Normalisation::None, " x "),
            Ok("x".into())
        );
    }
}
