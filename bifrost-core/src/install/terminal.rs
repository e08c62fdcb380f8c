//! The real [`Console`] of `bifrost install`: standard output and error,
//! answers from standard input, secrets from the terminal without echo.

use super::secret::{Secret, SecretError};
use super::session::Console;
use std::io::{BufRead, IsTerminal, Write};

/// This process's terminal.
pub struct Terminal;

impl Console for Terminal {
    fn out(&mut self, text: &str) {
        print!("{text}");
        let _ = std::io::stdout().flush();
    }

    fn err(&mut self, text: &str) {
        eprint!("{text}");
    }

    fn interactive(&self) -> bool {
        std::io::stdin().is_terminal()
    }

    fn ask(&mut self, prompt: &str) -> Option<String> {
        self.out(prompt);
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).ok()?;
        Some(line)
    }

    fn secret(&mut self, what: &str, confirm: bool) -> Result<Secret, SecretError> {
        Secret::prompt(what, confirm)
    }
}
