// json_header.h: the small strict JSON that a safetensors header uses (nn/safetensors.h):
// objects, arrays, strings and integers, nothing else (no fractions, booleans or null), read
// into a Json tree with keys in file order, and strings written with serde_json's escapes.
// Strings must be valid UTF-8 (no overlongs, no surrogates); \u escapes, paired surrogates
// included, become UTF-8. Errors name the source and the header byte. Not here: what the keys
// mean (nn/safetensors.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fpa::nn {

struct Json {
  enum Kind { object, array, string, integer } kind = object;
  std::string text;               // string
  int64_t number = 0;             // integer
  std::vector<std::string> keys;  // object: keys[i] names items[i], in file order
  std::vector<Json> items;        // object values or array elements
};

// "an object", "an array", "a string", "an integer": for messages.
const char* json_kind_name(Json::Kind k);

// The whole header: one object, then only whitespace (the padding); nesting up to 32 levels.
// Fails with "PATH: malformed JSON header at header byte N: ..." otherwise.
Json parse_json_header(const std::string& text, const std::string& path);

// Appends s as a JSON string (the escapes serde_json uses: short forms, else \u00XX).
void append_json_string(std::string& out, const std::string& s);

// Whether s is valid UTF-8 (what a header's strings must be).
bool valid_utf8(const std::string& s);

}  // namespace fpa::nn
