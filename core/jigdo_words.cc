#include "core/jigdo_words.h"

#include "core/jigdo_file.h"

namespace jigdoofus {

namespace {
bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }
}  // namespace

Result<std::vector<JigdoWord>> SplitJigdoWordsWithSpans(std::string_view value) {
  std::vector<JigdoWord> words;
  size_t i = 0;
  const size_t n = value.size();
  while (i < n) {
    while (i < n && IsBlank(value[i])) ++i;
    if (i >= n || value[i] == '#') break;
    JigdoWord word;
    word.begin = i;
    while (i < n && !IsBlank(value[i]) && value[i] != '#') {
      char c = value[i];
      if (c == '\'') {
        size_t close = value.find('\'', i + 1);
        if (close == std::string_view::npos) {
          return Status::Corruption("unterminated ' quote starting at column " + std::to_string(i + 1) + " of the value");
        }
        word.text.append(value.substr(i + 1, close - i - 1));
        i = close + 1;
      } else if (c == '"') {
        size_t start = i;
        ++i;
        bool closed = false;
        while (i < n) {
          if (value[i] == '\\' && i + 1 < n) {
            word.text.push_back(value[i + 1]);
            i += 2;
          } else if (value[i] == '"') {
            closed = true;
            ++i;
            break;
          } else {
            word.text.push_back(value[i]);
            ++i;
          }
        }
        if (!closed) {
          return Status::Corruption("unterminated \" quote starting at column " + std::to_string(start + 1) + " of the value");
        }
      } else if (c == '\\') {
        if (i + 1 < n) {
          word.text.push_back(value[i + 1]);
          i += 2;
        } else {
          word.text.push_back('\\');
          ++i;
        }
      } else {
        word.text.push_back(c);
        ++i;
      }
    }
    word.end = i;
    words.push_back(std::move(word));
  }
  return words;
}

Result<std::vector<std::string>> SplitJigdoWords(std::string_view value) {
  auto words = SplitJigdoWordsWithSpans(value);
  if (!words.ok()) return words.status();
  std::vector<std::string> out;
  out.reserve(words->size());
  for (auto& w : *words) out.push_back(std::move(w.text));
  return out;
}

Result<LocationValue> ParseLocationValue(std::string_view value) {
  auto words = SplitJigdoWordsWithSpans(value);
  if (!words.ok()) return words.status();
  LocationValue result;
  const std::vector<JigdoWord>& w = *words;
  for (size_t i = 0; i < w.size(); ++i) {
    if (i == 0) {
      result.location = w[i].text;
    } else if (w[i].text.starts_with("--")) {
      result.options.push_back(w[i].text);
    } else {
      result.location.append(value.substr(w[i - 1].end, w[i].begin - w[i - 1].end));
      result.location.append(w[i].text);
    }
  }
  return result;
}

}  // namespace jigdoofus
