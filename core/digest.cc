#include "core/digest.h"

#include <openssl/evp.h>

#include <cstring>
#include <new>

namespace jigdoofus {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int DecodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

const EVP_MD* MdFor(HashAlgo algo) { return algo == HashAlgo::kMd5 ? EVP_md5() : EVP_sha256(); }
}  // namespace

const char* HashAlgoName(HashAlgo a) { return a == HashAlgo::kMd5 ? "MD5" : "SHA256"; }

Digest Digest::FromBytes(HashAlgo algo, std::span<const uint8_t> raw) {
  Digest d;
  d.algo = algo;
  std::memcpy(d.bytes.data(), raw.data(), std::min(raw.size(), DigestSize(algo)));
  return d;
}

std::string Digest::ToHex() const { return jigdoofus::ToHex(view()); }
std::string Digest::ToBase64() const { return JigdoBase64Encode(view()); }

size_t DigestHash::operator()(const Digest& d) const noexcept {
  // Digests are uniformly distributed: the first 8 bytes are a fine hash.
  uint64_t h;
  std::memcpy(&h, d.bytes.data(), sizeof h);
  return static_cast<size_t>(h ^ static_cast<uint64_t>(d.algo));
}

struct Hasher::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Hasher::Hasher(HashAlgo algo) : algo_(algo), ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, MdFor(algo), nullptr) != 1) throw std::bad_alloc();
}
Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(std::span<const uint8_t> data) {
  if (!data.empty()) EVP_DigestUpdate(ctx_->md, data.data(), data.size());
}

Digest Hasher::Finish() {
  Digest d;
  d.algo = algo_;
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, d.bytes.data(), &len);
  EVP_DigestInit_ex(ctx_->md, MdFor(algo_), nullptr);
  return d;
}

Digest HashBytes(HashAlgo algo, std::span<const uint8_t> data) {
  Hasher h(algo);
  h.Update(data);
  return h.Finish();
}

std::string JigdoBase64Encode(std::span<const uint8_t> data) {
  std::string out;
  out.reserve((data.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : data) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

Result<std::string> JigdoBase64Decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = DecodeChar(c);
    if (v < 0) return Status::Corruption("invalid character '" + std::string(1, c) + "' in jigdo Base64 \"" + std::string(text) + "\"");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero padding (fewer than 8 of them, all clear).
  if (bits >= 6 || (acc & ((1u << bits) - 1)) != 0) {
    return Status::Corruption("malformed jigdo Base64 \"" + std::string(text) + "\"");
  }
  return out;
}

Result<Digest> ParseDigestBase64(std::string_view text) {
  HashAlgo algo;
  if (text.size() == 22) {
    algo = HashAlgo::kMd5;
  } else if (text.size() == 43) {
    algo = HashAlgo::kSha256;
  } else {
    return Status::Corruption("\"" + std::string(text) + "\" is not a jigdo Base64 MD5 (22 characters) or SHA256 (43 characters) checksum");
  }
  auto raw = JigdoBase64Decode(text);
  if (!raw.ok()) return raw.status();
  if (raw->size() != DigestSize(algo)) return Status::Corruption("malformed checksum \"" + std::string(text) + "\"");
  return Digest::FromBytes(algo, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(raw->data()), raw->size()));
}

std::string ToHex(std::span<const uint8_t> data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (uint8_t b : data) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

}  // namespace jigdoofus
