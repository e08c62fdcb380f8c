//! Install to disk: the plan (fresh or beside Kinoite) and its execution.
