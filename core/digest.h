// Digests (MD5, SHA256), incremental hashing, and jigdo's Base64 variant.
//
// A Digest is a value type: algorithm + raw bytes. It is the identity of a
// slice together with its size (see SliceId). Hasher wraps an OpenSSL
// EVP_MD_CTX (RAII); one Hasher belongs to one thread at a time.
//
// jigdo's Base64 (TechDetails.txt): RFC 2045 alphabet with '-' for '+' and
// '_' for '/', and no '=' padding. MD5 encodes to 22 characters, SHA256 to 43.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace jigdoofus {

enum class HashAlgo : uint8_t { kMd5 = 1, kSha256 = 2 };

inline constexpr size_t kMd5Size = 16;
inline constexpr size_t kSha256Size = 32;
inline constexpr size_t DigestSize(HashAlgo a) { return a == HashAlgo::kMd5 ? kMd5Size : kSha256Size; }
const char* HashAlgoName(HashAlgo a);  // "MD5" / "SHA256"

struct Digest {
  HashAlgo algo = HashAlgo::kMd5;
  std::array<uint8_t, kSha256Size> bytes{};  // only the first DigestSize(algo) are used

  size_t size() const { return DigestSize(algo); }
  std::span<const uint8_t> view() const { return {bytes.data(), size()}; }
  static Digest FromBytes(HashAlgo algo, std::span<const uint8_t> raw);  // REQUIRES raw.size()==DigestSize(algo)
  std::string ToHex() const;
  std::string ToBase64() const;  // jigdo variant
  friend bool operator==(const Digest& a, const Digest& b) {
    return a.algo == b.algo && a.bytes == b.bytes;
  }
  friend bool operator<(const Digest& a, const Digest& b) {
    return a.algo != b.algo ? a.algo < b.algo : a.bytes < b.bytes;
  }
};

struct DigestHash {
  size_t operator()(const Digest& d) const noexcept;
};

// Incremental hasher. Not thread-safe; movable.
class Hasher {
 public:
  explicit Hasher(HashAlgo algo);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void Update(std::span<const uint8_t> data);
  void Update(std::string_view data) {
    Update(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  }
  Digest Finish();  // the hasher is reset afterwards
  HashAlgo algo() const { return algo_; }

 private:
  struct Ctx;
  HashAlgo algo_;
  std::unique_ptr<Ctx> ctx_;
};

Digest HashBytes(HashAlgo algo, std::span<const uint8_t> data);

// jigdo Base64. Decode accepts exactly the jigdo alphabet without padding;
// anything else is kCorruption naming the offending text.
std::string JigdoBase64Encode(std::span<const uint8_t> data);
Result<std::string> JigdoBase64Decode(std::string_view text);
// Parses a [Parts] key: 22 chars => MD5, 43 chars => SHA256.
Result<Digest> ParseDigestBase64(std::string_view text);
std::string ToHex(std::span<const uint8_t> data);

}  // namespace jigdoofus
