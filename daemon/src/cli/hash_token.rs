//! `herald hash-token`: the `token_sha256` to put in the config's `users`.

use anyhow::Context;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::process::ExitCode;

/// Arguments of `herald hash-token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The token; read from standard input when absent (so it stays out of shell history).
    pub token: Option<String>,
}

/// Prints the hex SHA-256 of the token.
pub fn run(args: Args) -> super::Outcome {
    let token = match args.token {
        Some(token) => token,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the token from standard input")?;
            text.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if token.is_empty() {
        anyhow::bail!("the token is empty: pass it as an argument or on standard input");
    }
    println!("{}", token_sha256(&token));
    Ok(ExitCode::SUCCESS)
}

/// The lower-case hex SHA-256 of a bearer token, as the config stores it.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_like_sha256sum() {
        // `printf password | sha256sum`
        assert_eq!(
            super::token_sha256("password"),
            "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
        );
    }
}
