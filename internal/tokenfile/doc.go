// Package tokenfile reads a bearer token from a file, for the agent's
// admin_token_file and dstatectl's --token-file alike: the file's contents
// with surrounding white space trimmed, refused when unreadable, empty,
// oversized or holding more than the token.
package tokenfile
