// InspectImage: which format an encoded image is and what its header
// declares, read without decoding it. The parsers follow the decoders that
// run afterwards (libjpeg, libpng, libwebp, OpenCV's BMP reader), so the size
// checked here is the size they decode.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/preprocess/preprocess.h"

namespace clca {
namespace {

constexpr char kSendAccepted[] = "send JPEG, PNG, WebP or BMP";

uint32_t Be16(const uint8_t* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t Le16(const uint8_t* p) { return (uint32_t{p[1]} << 8) | p[0]; }
uint32_t Le24(const uint8_t* p) { return Le16(p) | (uint32_t{p[2]} << 16); }
uint32_t Be32(const uint8_t* p) { return (Be16(p) << 16) | Be16(p + 2); }
uint32_t Le32(const uint8_t* p) { return (Le16(p + 2) << 16) | Le16(p); }

bool HasPrefix(const uint8_t* d, size_t n, std::string_view prefix, size_t at = 0) {
  return n >= at + prefix.size() && std::memcmp(d + at, prefix.data(), prefix.size()) == 0;
}

// Saturating arithmetic for byte counts derived from untrusted sizes.
int64_t MulSat(int64_t a, int64_t b) {
  int64_t out;
  return __builtin_mul_overflow(a, b, &out) ? INT64_MAX : out;
}
int64_t AddSat(int64_t a, int64_t b) {
  int64_t out;
  return __builtin_add_overflow(a, b, &out) ? INT64_MAX : out;
}

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

absl::Status Truncated(const char* format, size_t size) {
  return Invalid("truncated ", format, " header (", size, " bytes)");
}

// What a header declares, before the limits are checked.
struct Declared {
  int64_t width = 0;
  int64_t height = 0;
  int channels = 0;
  int bytes_per_sample = 1;
  // Whole-image buffers the decoder keeps besides its output.
  int64_t working_bytes = 0;
  bool cmyk = false;
  // Bytes the file must have for the declared pixels (0: not known).
  int64_t min_size = 0;
};

// The name of a format recognised by its magic bytes and refused, or null.
const char* RefusedFormat(const uint8_t* d, size_t n) {
  auto space_at = [&](size_t i) {
    return n > i && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r');
  };
  using namespace std::string_view_literals;
  if (HasPrefix(d, n, "\0\0\0\x0CjP  \r\n\x87\n"sv) || HasPrefix(d, n, "\xFF\x4F\xFF\x51"sv)) {
    return "JPEG 2000";
  }
  if (HasPrefix(d, n, "\0\0\0\x0CJXL \r\n\x87\n"sv) || HasPrefix(d, n, "\xFF\x0A"sv)) {
    return "JPEG XL";
  }
  if (HasPrefix(d, n, "II*\0"sv) || HasPrefix(d, n, "MM\0*"sv) || HasPrefix(d, n, "II+\0"sv) ||
      HasPrefix(d, n, "MM\0+"sv)) {
    return "TIFF";
  }
  if (HasPrefix(d, n, "GIF87a") || HasPrefix(d, n, "GIF89a")) return "GIF";
  if (HasPrefix(d, n, "#?RADIANCE") || HasPrefix(d, n, "#?RGBE")) return "Radiance HDR";
  if ((HasPrefix(d, n, "PF") || HasPrefix(d, n, "Pf")) && space_at(2)) return "PFM";
  if (n > 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6' && space_at(2)) return "PNM";
  if (HasPrefix(d, n, "P7") && space_at(2)) return "PAM";
  if (HasPrefix(d, n, "\x59\xA6\x6A\x95")) return "Sun raster";
  if (HasPrefix(d, n, "\x76\x2F\x31\x01")) return "OpenEXR";
  if (HasPrefix(d, n, "ftyp", 4)) {
    for (std::string_view brand : {"avif", "avis"}) {
      if (HasPrefix(d, n, brand, 8)) return "AVIF";
    }
    for (std::string_view brand : {"heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"}) {
      if (HasPrefix(d, n, brand, 8)) return "HEIF";
    }
  }
  if (HasPrefix(d, n, "\x8AMNG")) return "MNG";
  if (HasPrefix(d, n, "\x8BJNG")) return "JNG";
  if (HasPrefix(d, n, "8BPS")) return "Photoshop";
  if (HasPrefix(d, n, "qoif")) return "QOI";
  if (HasPrefix(d, n, "DDS ")) return "DDS";
  if (HasPrefix(d, n, "\0\0\1\0"sv) || HasPrefix(d, n, "\0\0\2\0"sv)) return "ICO";
  if (HasPrefix(d, n, "%PDF")) return "PDF";
  if (HasPrefix(d, n, "DICM", 128)) return "DICOM";
  if (HasPrefix(d, n, "<?xml") || HasPrefix(d, n, "<svg")) return "SVG";
  return nullptr;
}

// ---------------------------------------------------------------------------
// JPEG: the markers are walked as libjpeg reads them (bytes before a marker
// and fill bytes skipped) up to the first scan, so the frame header found is
// the one it decodes, and the first scan tells whether decoding buffers the
// whole image.

absl::StatusOr<Declared> InspectJpeg(const uint8_t* d, size_t n) {
  struct Component {
    int h = 1, v = 1;
  };
  bool have_frame = false;
  int frame_marker = 0, precision = 0, components = 0;
  int64_t width = 0, height = 0;
  Component comps[4];
  size_t i = 2;  // After SOI.
  while (true) {
    uint8_t marker = 0;
    while (marker == 0) {  // FF 00 is stuffed data, not a marker.
      while (i < n && d[i] != 0xFF) ++i;
      while (i < n && d[i] == 0xFF) ++i;
      if (i >= n) {
        return Invalid("truncated JPEG: the data ends before ",
                       have_frame ? "the first scan" : "the frame header (SOF)");
      }
      marker = d[i++];
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // No payload.
    if (marker == 0xD8) return Invalid("corrupt JPEG: a second start-of-image marker");
    if (marker == 0xD9) return Invalid("JPEG ends before its image data");
    const bool start_of_frame =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    const bool known = start_of_frame || marker == 0xC4 || marker == 0xCC ||
                       (marker >= 0xDA && marker <= 0xDD) || (marker >= 0xE0 && marker <= 0xEF) ||
                       marker == 0xFE;
    if (!known) return Invalid(absl::StrFormat("corrupt JPEG: unknown marker 0xFF%02X", marker));
    if (i + 2 > n) return Invalid("truncated JPEG: a marker segment is cut off");
    const size_t length = Be16(d + i);
    if (length < 2) return Invalid("corrupt JPEG: a marker segment of length ", length);
    const uint8_t* s = d + i + 2;  // The segment's payload.
    const size_t available = n - i - 2;
    if (marker == 0xDA) {  // Start of scan: the header is complete.
      if (!have_frame) return Invalid("corrupt JPEG: a scan before the frame header (SOF)");
      if (available < 1) return Invalid("truncated JPEG: the scan header is cut off");
      const int scan_components = s[0];
      const bool progressive = frame_marker == 0xC2 || frame_marker == 0xCA;
      if (precision != 8) {
        return Invalid(precision, "-bit JPEG samples are not supported (8-bit only)");
      }
      if (frame_marker != 0xC0 && frame_marker != 0xC1 && !progressive && frame_marker != 0xC9) {
        return Invalid(absl::StrFormat(
            "lossless and hierarchical JPEG (SOF%d) are not supported; %s", frame_marker - 0xC0,
            kSendAccepted));
      }
      if (components != 1 && components != 3 && components != 4) {
        return Invalid("JPEG with ", components, " components is not supported (1, 3 or 4)");
      }
      Declared out;
      out.width = width;
      out.height = height;
      out.channels = components;
      out.cmyk = components == 4;
      // A progressive or multi-scan image is decoded from a buffer of all
      // its DCT coefficients: 64 two-byte values per block, per component.
      if (progressive || scan_components < components) {
        int h_max = 1, v_max = 1;
        for (int c = 0; c < components; ++c) {
          h_max = std::max(h_max, comps[c].h);
          v_max = std::max(v_max, comps[c].v);
        }
        auto blocks = [](int64_t size, int factor, int max_factor) {
          const int64_t in_blocks = (size * factor + max_factor * 8 - 1) / (max_factor * 8);
          return (in_blocks + factor - 1) / factor * factor;
        };
        for (int c = 0; c < components; ++c) {
          out.working_bytes += blocks(width, comps[c].h, h_max) *
                               blocks(height, comps[c].v, v_max) * 128;
        }
      }
      return out;
    }
    if (length - 2 > available) return Invalid("truncated JPEG: a marker segment is cut off");
    if (start_of_frame) {
      if (have_frame) return Invalid("corrupt JPEG: two frame headers (SOF)");
      if (length < 8) return Invalid("corrupt JPEG: a frame header of length ", length);
      have_frame = true;
      frame_marker = marker;
      precision = s[0];
      height = Be16(s + 1);
      width = Be16(s + 3);
      components = s[5];
      if (length != 8 + 3 * static_cast<size_t>(components)) {
        return Invalid("corrupt JPEG: a frame header of length ", length, " for ", components,
                       " components");
      }
      for (int c = 0; c < components && c < 4; ++c) {
        comps[c].h = s[6 + 3 * c + 1] >> 4;
        comps[c].v = s[6 + 3 * c + 1] & 15;
        if (comps[c].h < 1 || comps[c].h > 4 || comps[c].v < 1 || comps[c].v > 4) {
          return Invalid("corrupt JPEG: sampling factors ", comps[c].h, "x", comps[c].v);
        }
      }
    }
    i += length;
  }
}

// ---------------------------------------------------------------------------
// PNG: the IHDR chunk (CRC-checked, as libpng does), then the chunks up to
// the first IDAT for a transparency chunk, which adds an alpha channel.

uint32_t Crc32(const uint8_t* data, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

absl::StatusOr<Declared> InspectPng(const uint8_t* d, size_t n) {
  constexpr size_t kIhdrEnd = 8 + 8 + 13 + 4;
  if (n < kIhdrEnd) return Truncated("PNG", n);
  if (Be32(d + 8) != 13 || !HasPrefix(d, n, "IHDR", 12)) {
    return Invalid("corrupt PNG: the first chunk is not a 13-byte IHDR");
  }
  if (Crc32(d + 12, 17) != Be32(d + 29)) return Invalid("corrupt PNG: IHDR checksum mismatch");
  const uint32_t width = Be32(d + 16), height = Be32(d + 20);
  const int depth = d[24], color = d[25];
  if (width > 0x7FFFFFFFu || height > 0x7FFFFFFFu) {
    return Invalid("corrupt PNG: declares ", width, "x", height, " pixels");
  }
  const bool depth_ok =
      (color == 0 && (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)) ||
      (color == 3 && (depth == 1 || depth == 2 || depth == 4 || depth == 8)) ||
      ((color == 2 || color == 4 || color == 6) && (depth == 8 || depth == 16));
  if (!depth_ok || d[26] != 0 || d[27] != 0 || d[28] > 1) {
    return Invalid("corrupt PNG: colour type ", color, ", bit depth ", depth, ", methods ", d[26],
                   "/", d[27], "/", d[28]);
  }
  bool transparency = false;
  for (size_t at = kIhdrEnd;;) {
    if (n - at < 8) return Invalid("truncated PNG: the data ends before the image data (IDAT)");
    const uint32_t length = Be32(d + at);
    if (length > 0x7FFFFFFFu) return Invalid("corrupt PNG: a chunk of ", length, " bytes");
    if (HasPrefix(d, n, "IDAT", at + 4)) break;
    if (HasPrefix(d, n, "IEND", at + 4)) return Invalid("corrupt PNG: no image data (IDAT)");
    if (HasPrefix(d, n, "tRNS", at + 4)) transparency = true;
    if (n - at - 8 < static_cast<size_t>(length) + 4) {
      return Invalid("truncated PNG: the data ends before the image data (IDAT)");
    }
    at += 12 + static_cast<size_t>(length);
  }
  Declared out;
  out.width = width;
  out.height = height;
  // As OpenCV decodes: gray stays one channel, transparency and gray+alpha
  // give four.
  switch (color) {
    case 0: out.channels = 1; break;
    case 2:
    case 3: out.channels = transparency ? 4 : 3; break;
    default: out.channels = 4; break;
  }
  out.bytes_per_sample = depth == 16 ? 2 : 1;
  return out;
}

// ---------------------------------------------------------------------------
// WebP: the RIFF header, then a lossy (VP8), lossless (VP8L) or extended
// (VP8X) image; for VP8X the canvas, and the frame inside, which must agree.

struct WebpFrame {
  int64_t width = 0;
  int64_t height = 0;
  bool lossless = false;
  bool alpha = false;
};

absl::StatusOr<WebpFrame> InspectWebpFrame(const uint8_t* fourcc, const uint8_t* p, size_t m) {
  WebpFrame frame;
  if (std::memcmp(fourcc, "VP8 ", 4) == 0) {
    if (m < 10) return Truncated("WebP", m);
    const uint32_t bits = Le24(p);
    if ((bits & 1) != 0) return Invalid("corrupt WebP: the lossy frame is not a key frame");
    if (p[3] != 0x9D || p[4] != 0x01 || p[5] != 0x2A) {
      return Invalid("corrupt WebP: bad lossy frame start code");
    }
    frame.width = Le16(p + 6) & 0x3FFF;
    frame.height = Le16(p + 8) & 0x3FFF;
    return frame;
  }
  if (m < 5) return Truncated("WebP", m);
  if (p[0] != 0x2F) return Invalid("corrupt WebP: bad lossless signature");
  const uint32_t bits = Le32(p + 1);
  if ((bits >> 29) != 0) return Invalid("corrupt WebP: unknown lossless version ", bits >> 29);
  frame.width = (bits & 0x3FFF) + 1;
  frame.height = ((bits >> 14) & 0x3FFF) + 1;
  frame.lossless = true;
  frame.alpha = ((bits >> 28) & 1) != 0;
  return frame;
}

bool IsFrameChunk(const uint8_t* fourcc) {
  return std::memcmp(fourcc, "VP8 ", 4) == 0 || std::memcmp(fourcc, "VP8L", 4) == 0;
}

absl::StatusOr<Declared> InspectWebp(const uint8_t* d, size_t n) {
  if (n < 20) return Truncated("WebP", n);
  const uint64_t riff_end = uint64_t{Le32(d + 4)} + 8;
  if (riff_end < 20) return Invalid("corrupt WebP: RIFF size ", Le32(d + 4));
  if (riff_end > n) {
    return Invalid("truncated WebP: its RIFF header declares ", riff_end, " bytes, got ", n);
  }
  n = static_cast<size_t>(riff_end);  // libwebp ignores what follows.
  // The chunk at `at`: its payload and the payload's size within the data.
  auto payload = [&](size_t at, size_t* size) {
    *size = std::min<size_t>(Le32(d + at + 4), n - at - 8);
    return d + at + 8;
  };
  size_t size = 0;
  const uint8_t* p = payload(12, &size);
  Declared out;
  if (IsFrameChunk(d + 12)) {
    absl::StatusOr<WebpFrame> frame = InspectWebpFrame(d + 12, p, size);
    if (!frame.ok()) return frame.status();
    out.width = frame->width;
    out.height = frame->height;
    out.channels = frame->alpha ? 4 : 3;
    if (frame->lossless) out.working_bytes = MulSat(MulSat(out.width, out.height), 4);
    return out;
  }
  if (!HasPrefix(d, n, "VP8X", 12)) {
    return Invalid("corrupt WebP: the first chunk is not VP8, VP8L or VP8X");
  }
  if (Le32(d + 16) < 10) return Invalid("corrupt WebP: a VP8X chunk of ", Le32(d + 16), " bytes");
  if (size < 10) return Truncated("WebP", n);
  const uint8_t flags = p[0];
  if ((flags & 0x02) != 0) return Invalid("animated WebP is not supported; send a still image");
  out.width = int64_t{Le24(p + 4)} + 1;
  out.height = int64_t{Le24(p + 7)} + 1;
  bool alpha_chunk = false;
  for (uint64_t at = 12 + 8 + ((uint64_t{Le32(d + 16)} + 1) & ~uint64_t{1});;) {
    if (at >= n || n - at < 8) return Invalid("truncated WebP: no image data after its header");
    if (HasPrefix(d, n, "ANIM", at) || HasPrefix(d, n, "ANMF", at)) {
      return Invalid("animated WebP is not supported; send a still image");
    }
    if (HasPrefix(d, n, "ALPH", at)) alpha_chunk = true;
    if (IsFrameChunk(d + at)) {
      const uint8_t* q = payload(at, &size);
      absl::StatusOr<WebpFrame> frame = InspectWebpFrame(d + at, q, size);
      if (!frame.ok()) return frame.status();
      if (frame->width != out.width || frame->height != out.height) {
        return Invalid("corrupt WebP: a ", frame->width, "x", frame->height,
                       " frame on a canvas of ", out.width, "x", out.height);
      }
      const int64_t pixels = MulSat(out.width, out.height);
      out.channels = (flags & 0x10) != 0 || alpha_chunk || frame->alpha ? 4 : 3;
      // Lossless decoding keeps a 4-byte ARGB plane; an alpha channel is a
      // plane of its own, itself possibly lossless-coded.
      if (frame->lossless) out.working_bytes = AddSat(out.working_bytes, MulSat(pixels, 4));
      if (alpha_chunk) out.working_bytes = AddSat(out.working_bytes, MulSat(pixels, 5));
      return out;
    }
    at += 8 + ((uint64_t{Le32(d + at + 4)} + 1) & ~uint64_t{1});
  }
}

// ---------------------------------------------------------------------------
// BMP: the file header and the core (12-byte) or info (40 to 124-byte)
// header, with the bit depths and compressions OpenCV's reader decodes.

absl::StatusOr<Declared> InspectBmp(const uint8_t* d, size_t n) {
  if (n < 18) return Truncated("BMP", n);
  const uint32_t offset = Le32(d + 10);
  const uint32_t header_size = Le32(d + 14);
  int64_t width, height;
  uint32_t bpp, compression = 0;
  if (header_size == 12) {
    if (n < 14 + 12) return Truncated("BMP", n);
    width = Le16(d + 18);
    height = Le16(d + 20);
    bpp = Le16(d + 24);
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 24 && bpp != 32) {
      return Invalid("BMP with ", bpp, " bits per pixel is not supported");
    }
  } else if (header_size == 40 || header_size == 52 || header_size == 56 || header_size == 64 ||
             header_size == 108 || header_size == 124) {
    if (n < 14 + header_size) return Truncated("BMP", n);
    width = static_cast<int32_t>(Le32(d + 18));
    height = static_cast<int32_t>(Le32(d + 22));
    if (height < 0) height = -height;  // Top-down rows.
    bpp = Le16(d + 28);
    compression = Le32(d + 30);
    // 0: uncompressed, 1: RLE8, 2: RLE4, 3: bit fields.
    const bool supported = (compression == 0 && (bpp == 1 || bpp == 4 || bpp == 8 || bpp == 16 ||
                                                 bpp == 24 || bpp == 32)) ||
                           (compression == 1 && bpp == 8) || (compression == 2 && bpp == 4) ||
                           (compression == 3 && (bpp == 16 || bpp == 32));
    if (!supported) {
      return Invalid("BMP with ", bpp, " bits per pixel and compression ", compression,
                     " is not supported");
    }
  } else {
    return Invalid("BMP with a ", header_size, "-byte header is not supported");
  }
  if (width < 0) return Invalid("corrupt BMP: width ", width);
  if (offset >= n) return Invalid("truncated BMP: its pixels would start at byte ", offset);
  Declared out;
  out.width = width;
  out.height = height;
  if (compression == 0 || compression == 3) {
    // Rows are padded to 4 bytes; the file must hold them all.
    out.min_size = AddSat(offset, MulSat((width * bpp + 31) / 32 * 4, height));
  }
  out.channels = bpp == 32 && compression == 3 ? 4 : 3;
  return out;
}

}  // namespace

const char* ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kBmp: return "BMP";
  }
  return "?";
}

absl::StatusOr<ImageHeader> InspectImage(const uint8_t* data, size_t size,
                                         const PreprocessOptions& options) {
  if (data == nullptr || size == 0) {
    return Invalid("image is empty (0 bytes); ", kSendAccepted);
  }
  if (static_cast<uint64_t>(size) > static_cast<uint64_t>(options.max_encoded_bytes)) {
    return Invalid("encoded image is ", size, " bytes; the limit is ", options.max_encoded_bytes,
                   " bytes");
  }
  ImageHeader header;
  absl::StatusOr<Declared> declared;
  if (HasPrefix(data, size, "\xFF\xD8\xFF")) {
    header.format = ImageFormat::kJpeg;
    declared = InspectJpeg(data, size);
  } else if (HasPrefix(data, size, "\x89PNG\r\n\x1A\n")) {
    header.format = ImageFormat::kPng;
    declared = InspectPng(data, size);
  } else if (HasPrefix(data, size, "RIFF") && HasPrefix(data, size, "WEBP", 8)) {
    header.format = ImageFormat::kWebp;
    declared = InspectWebp(data, size);
  } else if (HasPrefix(data, size, "BM")) {
    header.format = ImageFormat::kBmp;
    declared = InspectBmp(data, size);
  } else if (const char* refused = RefusedFormat(data, size)) {
    return Invalid("unsupported image format (", refused, "); ", kSendAccepted);
  } else {
    std::string first;
    for (size_t i = 0; i < std::min<size_t>(size, 8); ++i) {
      absl::StrAppendFormat(&first, "%s%02x", i == 0 ? "" : " ", data[i]);
    }
    return Invalid("not a recognised image format (starts with ", first, "); ", kSendAccepted);
  }
  if (!declared.ok()) return declared.status();
  const char* name = ImageFormatName(header.format);
  const int64_t width = declared->width, height = declared->height;
  if (width <= 0 || height <= 0) {
    return Invalid(name, " image declares ", width, "x", height,
                   " pixels; width and height must be positive");
  }
  const int64_t pixels = MulSat(width, height);
  if (pixels > options.max_pixels) {
    return Invalid(name, " image is ", width, "x", height, " pixels; the limit is ",
                   options.max_pixels, " pixels");
  }
  const int64_t max_side = std::min<int64_t>(options.max_side, INT32_MAX);
  if (width > max_side || height > max_side) {
    return Invalid(name, " image is ", width, "x", height, " pixels; the limit is ", max_side,
                   " pixels per side");
  }
  if (declared->min_size > static_cast<int64_t>(size)) {
    return Invalid("truncated ", name, ": ", width, "x", height, " pixels need ",
                   declared->min_size, " bytes, got ", size);
  }
  header.width = static_cast<int>(width);
  header.height = static_cast<int>(height);
  header.channels = declared->channels;
  header.bytes_per_sample = declared->bytes_per_sample;
  header.cmyk = declared->cmyk;
  // The CMYK decoder writes RGB directly; the others' output is copied to RGB.
  const int64_t output = header.cmyk ? MulSat(pixels, 3)
                                     : AddSat(MulSat(pixels, int64_t{header.channels} *
                                                                 header.bytes_per_sample),
                                              MulSat(pixels, 3));
  header.decode_bytes = AddSat(output, declared->working_bytes);
  if (header.decode_bytes > options.max_decode_bytes) {
    return Invalid("decoding this ", width, "x", height, " ", name, " image would take ",
                   header.decode_bytes, " bytes; the limit is ", options.max_decode_bytes,
                   " bytes");
  }
  return header;
}

}  // namespace clca
