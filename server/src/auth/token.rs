//! `--token-auth-file`: static bearer tokens in kube-apiserver's CSV format,
//! `token,user,uid,"group1,group2"` (at least three columns; the fourth, optional, holds the
//! groups separated by commas, so it is quoted when there is more than one).

use super::user::UserInfo;
use super::AuthError;
use std::collections::HashMap;
use std::path::Path;

/// The tokens of a token file.
#[derive(Debug, Clone, Default)]
pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
}

impl TokenFile {
    /// Reads and parses a token file.
    pub fn load(path: &Path) -> Result<TokenFile, AuthError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| AuthError(format!("--token-auth-file: cannot read {}: {e}", path.display())))?;
        TokenFile::parse(&text, &path.display().to_string())
    }

    /// Parses the CSV text of a token file; `name` names it in errors and warnings.
    pub fn parse(text: &str, name: &str) -> Result<TokenFile, AuthError> {
        let records = parse_csv(text).map_err(|e| AuthError(format!("token file '{name}': {e}")))?;
        let mut tokens = HashMap::new();
        for (index, record) in records.into_iter().enumerate() {
            let number = index + 1;
            if record.len() < 3 {
                return Err(AuthError(format!(
                    "token file '{name}' must have at least 3 columns (token, user name, user uid), found {}",
                    record.len()
                )));
            }
            if record[0].is_empty() {
                tracing::warn!("empty token has been found in token file '{name}', record number '{number}'");
                continue;
            }
            let groups = record.get(3).map(|g| g.split(',').filter(|g| !g.is_empty()).map(str::to_string).collect()).unwrap_or_default();
            let user = UserInfo { name: record[1].clone(), uid: record[2].clone(), groups, ..UserInfo::default() };
            if tokens.insert(record[0].clone(), user).is_some() {
                tracing::warn!("duplicate token has been found in token file '{name}', record number '{number}'");
            }
        }
        Ok(TokenFile { tokens })
    }

    /// The user a token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        self.tokens.get(token).cloned()
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the file holds no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// Splits CSV text into records like Go's `encoding/csv` (RFC 4180: `"` quotes fields, `""`
/// is a quote inside them, quoted fields may hold commas and newlines; empty lines are
/// skipped).
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        // Skip empty lines.
        if matches!(chars.peek(), Some('\n' | '\r')) {
            if chars.next() == Some('\n') {
                line += 1;
            }
            continue;
        }
        let mut record = Vec::new();
        loop {
            let mut field = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let start = line;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            field.push(c);
                        }
                        None => return Err(format!("record on line {start}: extraneous or missing \" in quoted-field")),
                    }
                }
                if !matches!(chars.peek(), None | Some(',' | '\n' | '\r')) {
                    return Err(format!("record on line {line}: extraneous or missing \" in quoted-field"));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if matches!(c, ',' | '\n' | '\r') {
                        break;
                    }
                    if c == '"' {
                        return Err(format!("record on line {line}: bare \" in non-quoted-field"));
                    }
                    field.push(c);
                    chars.next();
                }
            }
            record.push(field);
            match chars.next() {
                Some(',') => continue,
                Some('\r') => {
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    line += 1;
                    break;
                }
                Some('\n') => {
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kube_apiserver_token_files() {
        let file = TokenFile::parse(
            "t1,alice,1\r\n\nt2,bob,2,\"dev,ops\"\nt3,carol,3,viewers,ignored\n,nobody,4\n\"t,4\",dave,5,\"say \"\"hi\"\"\"",
            "test",
        )
        .unwrap();
        assert_eq!(file.len(), 4);
        assert_eq!(file.authenticate("t1").unwrap(), UserInfo { name: "alice".into(), uid: "1".into(), ..UserInfo::default() });
        let bob = file.authenticate("t2").unwrap();
        assert_eq!((bob.name.as_str(), bob.uid.as_str(), bob.groups.clone()), ("bob", "2", vec!["dev".to_string(), "ops".to_string()]));
        assert_eq!(file.authenticate("t3").unwrap().groups, ["viewers"]);
        assert_eq!(file.authenticate("t,4").unwrap().groups, ["say \"hi\""]);
        assert!(file.authenticate("").is_none());
        assert!(file.authenticate("T1").is_none());
    }

    #[test]
    fn rejects_short_and_malformed_records() {
        assert_eq!(
            TokenFile::parse("t1,alice\n", "f").unwrap_err().0,
            "token file 'f' must have at least 3 columns (token, user name, user uid), found 2"
        );
        assert_eq!(TokenFile::parse("t1,al\"ice,1\n", "f").unwrap_err().0, "token file 'f': record on line 1: bare \" in non-quoted-field");
        assert!(TokenFile::parse("t1,alice,1,\"dev\n", "f").is_err());
    }
}
