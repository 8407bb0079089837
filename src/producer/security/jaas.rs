//! A parser for `sasl.jaas.config`: one JAAS login-module entry,
//! `<class> <flag> key="value" key2=value2;`, as Java users paste it, e.g.
//! `org.apache.kafka.common.security.scram.ScramLoginModule required
//! username="alice" password="secret";`. Errors name the position and what
//! was expected, never a value (option values are often passwords).

use std::collections::BTreeMap;
use std::fmt;

use super::Password;

/// Why a `sasl.jaas.config` value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JaasError {
    /// The text ended before the entry was complete.
    #[error("sasl.jaas.config ends early: expected {0}")]
    UnexpectedEnd(&'static str),
    /// A character that does not fit the grammar at this byte offset.
    #[error("sasl.jaas.config: expected {expected} at byte {at}")]
    Unexpected {
        /// What the grammar expected.
        expected: &'static str,
        /// Byte offset into the value.
        at: usize,
    },
    /// The control flag is not required, requisite, sufficient or optional.
    #[error("sasl.jaas.config: control flag must be required, requisite, sufficient or optional")]
    BadFlag,
    /// More than one login-module entry (Kafka allows exactly one).
    #[error("sasl.jaas.config must hold exactly one login module")]
    MoreThanOne,
    /// An option the login module needs is missing.
    #[error("sasl.jaas.config: {module} needs the option `{option}`")]
    MissingOption {
        /// The login module's short name.
        module: &'static str,
        /// The missing option.
        option: &'static str,
    },
}

/// The login modules whose options this crate reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginModule {
    /// `org.apache.kafka.common.security.plain.PlainLoginModule`.
    Plain,
    /// `org.apache.kafka.common.security.scram.ScramLoginModule`.
    Scram,
    /// `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule`.
    OAuthBearer,
    /// Any other class (e.g. Kerberos' `Krb5LoginModule`), by name.
    Other(String),
}

/// The options of a login-module entry. `Debug` shows the keys only.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct JaasOptions(BTreeMap<String, String>);

impl JaasOptions {
    /// The value of option `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

impl fmt::Debug for JaasOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// One parsed `sasl.jaas.config` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasConfig {
    /// The login module.
    pub module: LoginModule,
    /// Its options.
    pub options: JaasOptions,
}

/// A username and password from `sasl.jaas.config` or `sasl.username`/`sasl.password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: Password,
}

impl JaasConfig {
    /// Parses one entry.
    pub fn parse(text: &str) -> Result<Self, JaasError> {
        let mut p = Parser { s: text, at: 0 };
        let class = p.word("a login module class name")?;
        let flag = p.word("a control flag")?;
        if !matches!(
            flag.as_str(),
            "required" | "requisite" | "sufficient" | "optional"
        ) {
            return Err(JaasError::BadFlag);
        }
        let mut options = BTreeMap::new();
        loop {
            p.skip_ws();
            match p.peek() {
                None => return Err(JaasError::UnexpectedEnd("`;`")),
                Some(';') => {
                    p.at += 1;
                    break;
                }
                Some(_) => {
                    let key = p.word("an option name")?;
                    p.skip_ws();
                    p.expect('=')?;
                    let value = p.value()?;
                    options.insert(key, value);
                }
            }
        }
        p.skip_ws();
        if p.peek().is_some() {
            return Err(JaasError::MoreThanOne);
        }
        let module = match class.as_str() {
            "org.apache.kafka.common.security.plain.PlainLoginModule" => LoginModule::Plain,
            "org.apache.kafka.common.security.scram.ScramLoginModule" => LoginModule::Scram,
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule" => {
                LoginModule::OAuthBearer
            }
            _ => LoginModule::Other(class),
        };
        Ok(JaasConfig {
            module,
            options: JaasOptions(options),
        })
    }

    /// The `username` and `password` options (PlainLoginModule, ScramLoginModule).
    pub fn credentials(&self) -> Result<Credentials, JaasError> {
        let module = match self.module {
            LoginModule::Plain => "PlainLoginModule",
            LoginModule::Scram => "ScramLoginModule",
            LoginModule::OAuthBearer => "OAuthBearerLoginModule",
            LoginModule::Other(_) => "the login module",
        };
        let get = |option| {
            self.options
                .get(option)
                .ok_or(JaasError::MissingOption { module, option })
        };
        Ok(Credentials {
            username: get("username")?.to_string(),
            password: Password::new(get("password")?),
        })
    }
}

struct Parser<'a> {
    s: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.at..].chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.at += c.len_utf8();
        }
    }

    fn expect(&mut self, want: char) -> Result<(), JaasError> {
        match self.peek() {
            Some(c) if c == want => {
                self.at += 1;
                Ok(())
            }
            Some(_) => Err(JaasError::Unexpected {
                expected: "`=`",
                at: self.at,
            }),
            None => Err(JaasError::UnexpectedEnd("`=`")),
        }
    }

    /// A bare token: letters, digits and `._-$` (class names, flags, keys).
    fn word(&mut self, what: &'static str) -> Result<String, JaasError> {
        self.skip_ws();
        let start = self.at;
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_alphanumeric() || "._-$".contains(*c))
        {
            self.at += c.len_utf8();
        }
        if self.at == start {
            return Err(match self.peek() {
                None => JaasError::UnexpectedEnd(what),
                Some(_) => JaasError::Unexpected {
                    expected: what,
                    at: self.at,
                },
            });
        }
        Ok(self.s[start..self.at].to_string())
    }

    /// A double-quoted string (`\` escapes the next character) or a bare token.
    fn value(&mut self) -> Result<String, JaasError> {
        self.skip_ws();
        if self.peek() != Some('"') {
            return self.word("an option value");
        }
        self.at += 1;
        let mut out = String::new();
        let mut chars = self.s[self.at..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e)) => out.push(e),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(JaasError::UnexpectedEnd("a closing `\"`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_scram_entries() {
        let c = JaasConfig::parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="p;a\"ss";"#,
        )
        .unwrap();
        assert_eq!(c.module, LoginModule::Plain);
        let cr = c.credentials().unwrap();
        assert_eq!(cr.username, "alice");
        assert_eq!(cr.password.expose(), "p;a\"ss");
        assert!(!format!("{c:?} {cr:?}").contains("p;a"));

        let c = JaasConfig::parse(
            "  org.apache.kafka.common.security.scram.ScramLoginModule   required\n username=bob\tpassword = \"x y\" ;  ",
        )
        .unwrap();
        assert_eq!(c.module, LoginModule::Scram);
        assert_eq!(c.credentials().unwrap().password.expose(), "x y");
    }

    #[test]
    fn oauthbearer_unsecured_options() {
        let c = JaasConfig::parse(
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin" unsecuredLoginLifetimeSeconds="60";"#,
        )
        .unwrap();
        assert_eq!(c.module, LoginModule::OAuthBearer);
        assert_eq!(
            c.options.get("unsecuredLoginStringClaim_sub"),
            Some("admin")
        );
        assert!(matches!(
            c.credentials(),
            Err(JaasError::MissingOption {
                option: "username",
                ..
            })
        ));
    }

    #[test]
    fn bad_entries_are_typed_and_hide_values() {
        let m = "org.apache.kafka.common.security.plain.PlainLoginModule";
        assert_eq!(
            JaasConfig::parse(&format!("{m} required username=\"a\"")),
            Err(JaasError::UnexpectedEnd("`;`"))
        );
        assert_eq!(
            JaasConfig::parse(&format!("{m} mandatory;")),
            Err(JaasError::BadFlag)
        );
        let e = JaasConfig::parse(&format!("{m} required password=\"secret")).unwrap_err();
        assert!(!e.to_string().contains("secret"));
        assert_eq!(
            JaasConfig::parse(&format!("{m} required; {m} required;")),
            Err(JaasError::MoreThanOne)
        );
        assert!(matches!(
            JaasConfig::parse(&format!("{m} required username ;")),
            Err(JaasError::Unexpected {
                expected: "`=`",
                ..
            })
        ));
        assert_eq!(
            JaasConfig::parse(""),
            Err(JaasError::UnexpectedEnd("a login module class name"))
        );
    }
}
