//! The `CREATE JOB name [WITH (k = v, ...)] AS` header, which is not standard SQL: parsed here
//! from sqlparser's tokens, then blanked out so sqlparser reads the `INSERT ... SELECT` with
//! every position unchanged.

use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::error::ProcessorError;

/// One `WITH` option and where it was written.
#[derive(Debug, Clone)]
pub struct JobOption {
    pub name: String,
    pub value: String,
    pub at: Location,
}

#[derive(Debug)]
pub struct Header {
    pub name: String,
    pub options: Vec<JobOption>,
    /// The statement with the header replaced by spaces.
    pub body: String,
}

pub fn err(at: Location, reason: impl Into<String>) -> ProcessorError {
    ProcessorError::Sql {
        line: at.line.max(1),
        column: at.column.max(1),
        reason: reason.into(),
    }
}

fn is_word(t: &TokenWithSpan, kw: &str) -> bool {
    matches!(&t.token, Token::Word(w) if w.value.eq_ignore_ascii_case(kw))
}

pub fn parse_header(sql: &str) -> Result<Header, ProcessorError> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| err(e.location, e.message))?;
    let toks: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let end_loc = toks
        .last()
        .map_or(Location { line: 1, column: 1 }, |t| t.span.end);
    let mut i = 0;
    let at = |i: usize| toks.get(i).map_or(end_loc, |t| t.span.start);
    let expect = |i: usize, kw: &str| -> Result<(), ProcessorError> {
        match toks.get(i) {
            Some(t) if is_word(t, kw) => Ok(()),
            Some(t) => Err(err(
                t.span.start,
                format!("expected {kw}, found {}", t.token),
            )),
            None => Err(err(
                end_loc,
                format!("expected {kw}, found end of statement"),
            )),
        }
    };
    expect(i, "CREATE").map_err(|_| {
        err(
            at(0),
            "expected CREATE JOB name [WITH (...)] AS INSERT INTO ...",
        )
    })?;
    i += 1;
    expect(i, "JOB")?;
    i += 1;
    let name = match toks.get(i).map(|t| &t.token) {
        Some(Token::Word(w)) => w.value.clone(),
        _ => return Err(err(at(i), "expected the job name")),
    };
    i += 1;
    let mut options = Vec::new();
    if toks.get(i).is_some_and(|t| is_word(t, "WITH")) {
        i += 1;
        if toks.get(i).map(|t| &t.token) != Some(&Token::LParen) {
            return Err(err(at(i), "expected ( after WITH"));
        }
        i += 1;
        loop {
            let (name, nat) = match toks.get(i).map(|t| &t.token) {
                Some(Token::Word(w)) => (w.value.to_ascii_lowercase(), at(i)),
                Some(Token::SingleQuotedString(s)) => (s.to_ascii_lowercase(), at(i)),
                Some(Token::RParen) if options.is_empty() => break,
                _ => return Err(err(at(i), "expected an option name")),
            };
            i += 1;
            if toks.get(i).map(|t| &t.token) != Some(&Token::Eq) {
                return Err(err(at(i), format!("expected = after option {name}")));
            }
            i += 1;
            let value = match toks.get(i).map(|t| &t.token) {
                Some(Token::SingleQuotedString(s)) => s.clone(),
                Some(Token::Number(n, _)) => n.clone(),
                Some(Token::Word(w)) => w.value.clone(),
                _ => return Err(err(at(i), format!("expected a value for option {name}"))),
            };
            i += 1;
            options.push(JobOption {
                name,
                value,
                at: nat,
            });
            match toks.get(i).map(|t| &t.token) {
                Some(Token::Comma) => i += 1,
                Some(Token::RParen) => break,
                _ => return Err(err(at(i), "expected , or ) in WITH options")),
            }
        }
        i += 1;
    }
    expect(i, "AS")?;
    i += 1;
    let body_start = at(i);
    Ok(Header {
        name,
        options,
        body: blank_before(sql, body_start),
    })
}

/// `sql` with every character before `loc` (except line breaks) replaced by a space.
fn blank_before(sql: &str, loc: Location) -> String {
    let mut out = String::with_capacity(sql.len());
    let (mut line, mut col) = (1u64, 1u64);
    for c in sql.chars() {
        let before = line < loc.line || (line == loc.line && col < loc.column);
        if c == '\n' {
            out.push('\n');
            line += 1;
            col = 1;
            continue;
        }
        out.push(if before { ' ' } else { c });
        col += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_parsed_and_blanked() {
        let h = parse_header(
            "CREATE JOB j WITH (emit = 'final', grace = '5 seconds') AS\nINSERT INTO t SELECT 1",
        )
        .expect("header");
        assert_eq!(h.name, "j");
        assert_eq!(h.options.len(), 2);
        assert_eq!(h.options[1].value, "5 seconds");
        assert!(h.body.starts_with("   "));
        assert!(h.body.ends_with("\nINSERT INTO t SELECT 1"));
    }

    #[test]
    fn missing_as_is_positioned() {
        let e = parse_header("CREATE JOB j\n  INSERT INTO t SELECT 1").expect_err("no AS");
        assert_eq!(
            e,
            ProcessorError::Sql {
                line: 2,
                column: 3,
                reason: "expected AS, found INSERT".into()
            }
        );
    }
}
