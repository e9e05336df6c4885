// Blocks of the test servers' TOML configs that several test files use: collections (docs/protocol.md,
// section 6) and channel namespaces (section 2), so that a name means the same rules everywhere. A file
// joins the blocks it needs, with its own sections, into one config: `config(TODOS, VOTES,
// '[limits]\nrate = 5\n')`, or puts them in a template string.

// Collections
// -----------

// The tally of the vote-like collections: two questions with four levels each.
export const TALLY_Q1_Q2 = 'tally = { q1 = [0, 1, 2, 3], q2 = [0, 1, 2, 3] }';

// One [collections.NAME] block from its TOML lines.
export const collection = (name, ...lines) => `[collections.${name}]\n${lines.join('\n')}\n`;

// Everyone reads and writes every document.
export const openCollection = (name) => collection(name, 'read = "all"', 'write = "all"');

// One document per user (its id is the user id), counted in a tally; only its owner writes it, and reads
// it unless `read` is "all".
export const perUserTally = (name, { read = 'owner', tally = TALLY_Q1_Q2 } = {}) =>
  collection(name, 'per_user = true', `read = "${read}"`, 'write = "owner"', tally);

export const TODOS = openCollection('todos');
export const NOTES = collection('notes', 'read = "owner"', 'write = "owner"');  // private documents
export const SHARED = collection('shared', 'read = "all"', 'write = "owner"'); // everyone reads, owners write
export const READONLY = collection('readonly', 'write = "none"');
export const VOTES = perUserTally('votes');
// A tally of a plain collection (the defaults for reading and writing): one question, three answers.
export const CHOICE_VOTES = collection('votes', 'tally = { choice = [0, 1, 2] }');

// Namespaces
// ----------

// One [namespaces.NAME] block from its TOML lines.
export const namespace = (name, ...lines) => `[namespaces.${name}]\n${lines.join('\n')}\n`;

export const SMALL_NAMESPACE = namespace('small', 'history_size = 10'); // channels small:*, short history
export const RO_NAMESPACE = namespace('ro', 'client_publish = false');  // channels ro:*, clients may not publish

// Config sections joined into one config, a blank line between them.
export const config = (...sections) => sections.join('\n');
