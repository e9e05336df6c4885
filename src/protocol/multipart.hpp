// multipart/form-data bodies (RFC 7578), as PubNub SDKs upload a file: form fields, then the file's part.
// Written here because none of the chosen libraries parses them (Beast parses HTTP messages, not their
// multipart bodies); only what an upload needs: the boundary of a Content-Type, and the parts with their
// name, filename, Content-Type and bytes. Pure functions over the bytes, binary-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtsync::protocol::multipart {

struct Part {
  std::string name;          // Content-Disposition's name
  std::string filename;      // its filename, if any
  std::string content_type;  // the part's Content-Type, if any
  std::string_view body;     // into the parsed body
};

// The boundary of a `multipart/form-data; boundary=…` Content-Type (quoted or not); nullopt for any other
// type or a boundary RFC 2046 does not allow (1-70 characters).
std::optional<std::string> boundary_of(std::string_view content_type);

// The parts of `body`; nullopt when it is not a well-formed multipart body with that boundary (no closing
// delimiter, a part with no blank line after its headers, no Content-Disposition form-data name).
std::optional<std::vector<Part>> parse(std::string_view body, std::string_view boundary);

}  // namespace rtsync::protocol::multipart
