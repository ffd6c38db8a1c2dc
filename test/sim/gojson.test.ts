/**
 * The simulator words JSON syntax errors as Go's encoding/json does (a real server puts the text
 * into configure's statusmsg). The expected texts are Go 1.26's own, printed by json.Unmarshal for
 * each input; null marks valid JSON.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { goSyntaxErrorOf } from "../../src/sim/gojson.js";

const GO: Array<[string, string | null]> = [
  ["not json", "invalid character 'o' in literal null (expecting 'u')"],
  ["", "unexpected end of JSON input"],
  ["{", "unexpected end of JSON input"],
  ["{a", "invalid character 'a' looking for beginning of object key string"],
  ["{\"a\" 1}", "invalid character '1' after object key"],
  ["{\"a\":1 \"b\"}", "invalid character '\"' after object key:value pair"],
  ["[1 2]", "invalid character '2' after array element"],
  ["{} x", "invalid character 'x' after top-level value"],
  ["x", "invalid character 'x' looking for beginning of value"],
  ["01", "invalid character '1' after top-level value"],
  ["1.x", "invalid character 'x' after decimal point in numeric literal"],
  ["-x", "invalid character 'x' in numeric literal"],
  ["\"\\q\"", "invalid character 'q' in string escape code"],
  ["1e+x", "invalid character 'x' in exponent of numeric literal"],
  ["\"a\tb\"", "invalid character '\\t' in string literal"],
  ["tru", "invalid character ' ' in literal true (expecting 'e')"],
  ["'a'", "invalid character '\\'' looking for beginning of value"],
  ["-", "invalid character ' ' in numeric literal"],
  ["1.", "invalid character ' ' after decimal point in numeric literal"],
  ["1e", "invalid character ' ' in exponent of numeric literal"],
  ["\"abc", "unexpected end of JSON input"],
  ["\"\\", "invalid character ' ' in string escape code"],
  ["\"\\u12", "invalid character ' ' in \\u hexadecimal character escape"],
  ["[", "unexpected end of JSON input"],
  ["[1,", "unexpected end of JSON input"],
  ["{\"a\":", "unexpected end of JSON input"],
  ["{\"a\"", "unexpected end of JSON input"],
  [" \n", "unexpected end of JSON input"],
];

test("JSON syntax errors in Go's words", () => {
  for (const [input, want] of GO) assert.equal(goSyntaxErrorOf(input) ?? null, want, JSON.stringify(input));
});
