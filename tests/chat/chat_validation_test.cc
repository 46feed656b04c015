#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "chat_service/validation.h"
#include "common/utf8.h"

namespace chat::chat_service {
namespace {

TEST(ChatValidation, ClientMsgId) {
  Limits l;
  EXPECT_TRUE(ValidateClientMsgId("abc-123", l).ok());
  EXPECT_FALSE(ValidateClientMsgId("", l).ok());
  EXPECT_FALSE(ValidateClientMsgId(std::string(l.chat.max_client_msg_id_chars + 1, 'x'), l).ok());
  EXPECT_TRUE(ValidateClientMsgId(std::string(l.chat.max_client_msg_id_chars, 'x'), l).ok());
  EXPECT_FALSE(ValidateClientMsgId("tab\there", l).ok());
  EXPECT_FALSE(ValidateClientMsgId("caf\xC3\xA9", l).ok());
}

TEST(ChatValidation, Content) {
  Limits l;
  l.chat.max_text_chars = 5;
  v1::MessageContent c;
  EXPECT_EQ(ValidateUserContent(&c, l).code(), v1::INVALID_ARGUMENT);
  c.mutable_text()->set_text("");
  EXPECT_FALSE(ValidateUserContent(&c, l).ok());
  c.mutable_text()->set_text("你好你好你");  // 5 code points, 15 bytes
  EXPECT_TRUE(ValidateUserContent(&c, l).ok());
  c.mutable_text()->set_text("123456");
  EXPECT_FALSE(ValidateUserContent(&c, l).ok());

  c.mutable_media()->set_url("https://x/y.png");
  EXPECT_FALSE(ValidateUserContent(&c, l).ok());  // kind missing
  c.mutable_media()->set_kind(v1::MEDIA_KIND_IMAGE);
  EXPECT_TRUE(ValidateUserContent(&c, l).ok());
  c.mutable_media()->set_url(std::string(2049, 'u'));
  EXPECT_FALSE(ValidateUserContent(&c, l).ok());

  c.mutable_location()->set_latitude(91);
  EXPECT_FALSE(ValidateUserContent(&c, l).ok());
  c.mutable_location()->set_latitude(45);
  c.mutable_location()->set_longitude(NAN);
  EXPECT_FALSE(ValidateUserContent(&c, l).ok());
  c.mutable_location()->set_longitude(-180);
  EXPECT_TRUE(ValidateUserContent(&c, l).ok());

  c.mutable_contact_card()->set_user_id(0);
  EXPECT_FALSE(ValidateUserContent(&c, l).ok());
  c.mutable_contact_card()->set_user_id(7);
  EXPECT_TRUE(ValidateUserContent(&c, l).ok());

  c.mutable_system()->set_text("hi");
  EXPECT_EQ(ValidateUserContent(&c, l).code(), v1::INVALID_ARGUMENT);
}

Status Text(const std::string& text, std::string* stored = nullptr) {
  Limits l;
  v1::MessageContent c;
  c.mutable_text()->set_text(text);
  Status st = ValidateUserContent(&c, l);
  if (stored) *stored = c.text().text();
  return st;
}

// The unsafe-text probes of issue 9 item 5 against message text.
TEST(ChatValidation, TextRefusesControlsButNewlineAndTab) {
  EXPECT_TRUE(Text("two\nlines\tand a tab").ok());
  for (std::string bad : {std::string("\x1b[2J\x1b[Hfake prompt$ "), std::string("nul\0byte", 8),
                          std::string("over\rwrite"), std::string("del\x7F"),
                          std::string("csi\xC2\x9B"
                                      "2J")}) {
    Status st = Text(bad);
    EXPECT_EQ(st.code(), v1::INVALID_ARGUMENT) << EscapeForTerminal(bad);
    EXPECT_EQ(st.message().rfind("text ", 0), 0u) << st.message();
    EXPECT_EQ(st.message().find("fake"), std::string::npos) << "the error must not echo the text";
  }
}

TEST(ChatValidation, TextIsStoredInNfcAndCountedAfterIt) {
  std::string stored;
  ASSERT_TRUE(Text("cafe\xCC\x81", &stored).ok());
  EXPECT_EQ(stored, "caf\xC3\xA9");
  Limits l;
  l.chat.max_text_chars = 3;
  v1::MessageContent c;
  c.mutable_text()->set_text(
      "e\xCC\x81"
      "e\xCC\x81"
      "e\xCC\x81");  // 6 code points, 3 after NFC
  ASSERT_TRUE(ValidateUserContent(&c, l).ok());
  EXPECT_EQ(c.text().text(), "\xC3\xA9\xC3\xA9\xC3\xA9");
}

TEST(ChatValidation, MediaUrlsMustBeHttps) {
  Limits l;
  v1::MessageContent c;
  auto* m = c.mutable_media();
  m->set_kind(v1::MEDIA_KIND_FILE);
  m->set_url("https://media.example.com/f/1.pdf");
  m->set_thumbnail_url("https://media.example.com/t/1.jpg");
  m->set_mime_type("application/pdf");
  m->set_file_name("report.pdf");
  ASSERT_TRUE(ValidateUserContent(&c, l).ok());
  for (const char* bad : {"javascript:alert(document.cookie)", "file:///etc/passwd", "http://media.example.com/1",
                          "data:text/html;base64,PHNjcmlwdD4=", "https://user@media.example.com/1", "https:///1"}) {
    m->set_url(bad);
    Status st = ValidateUserContent(&c, l);
    EXPECT_EQ(st.code(), v1::INVALID_ARGUMENT) << bad;
    EXPECT_EQ(st.message().rfind("media url ", 0), 0u) << st.message();
    m->set_url("https://media.example.com/f/1.pdf");
    m->set_thumbnail_url(bad);
    st = ValidateUserContent(&c, l);
    EXPECT_EQ(st.code(), v1::INVALID_ARGUMENT) << bad;
    EXPECT_EQ(st.message().rfind("media thumbnail_url ", 0), 0u) << st.message();
    m->set_thumbnail_url("");
    EXPECT_TRUE(ValidateUserContent(&c, l).ok()) << "thumbnail_url is optional";
  }
}

TEST(ChatValidation, MediaFileNameAndMimeTypeAndLocationLabel) {
  Limits l;
  v1::MessageContent c;
  auto* m = c.mutable_media();
  m->set_kind(v1::MEDIA_KIND_FILE);
  m->set_url("https://media.example.com/f/1");
  for (const char* bad : {"invoice\xE2\x80\xAE"
                          "fdp.exe",
                          "a\nb", "zw\xE2\x80\x8B",
                          "\xEF\xBB\xBF"
                          "a",
                          "  "}) {
    m->set_file_name(bad);
    Status st = ValidateUserContent(&c, l);
    EXPECT_EQ(st.code(), v1::INVALID_ARGUMENT) << EscapeForTerminal(bad);
    EXPECT_EQ(st.message().rfind("media file_name ", 0), 0u) << st.message();
  }
  m->set_file_name("Re\xCC\x81sume\xCC\x81.pdf");
  ASSERT_TRUE(ValidateUserContent(&c, l).ok());
  EXPECT_EQ(m->file_name(), "R\xC3\xA9sum\xC3\xA9.pdf");

  for (const char* ok :
       {"", "image/jpeg", "audio/mp4", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "text/plain; charset=utf-8", "image/svg+xml"})
    EXPECT_TRUE(ValidateMimeType(ok).ok()) << ok;
  for (const char* bad : {"image", "/jpeg", "image/", "image/jpeg\r\nX-Evil: 1", "im age/jpeg", "image/jp\xC3\xA9g",
                          "-x/y", "text/html\x1b"})
    EXPECT_EQ(ValidateMimeType(bad).code(), v1::INVALID_ARGUMENT) << EscapeForTerminal(bad);
  EXPECT_EQ(ValidateMimeType(std::string(257, 'a')).code(), v1::INVALID_ARGUMENT);

  c.mutable_location()->set_latitude(1);
  c.mutable_location()->set_label("Caf\xC3\xA9 \xE2\x80\xAE");
  EXPECT_EQ(ValidateUserContent(&c, l).code(), v1::INVALID_ARGUMENT);
  c.mutable_location()->set_label("Cafe\xCC\x81 de Flore");
  ASSERT_TRUE(ValidateUserContent(&c, l).ok());
  EXPECT_EQ(c.location().label(), "Caf\xC3\xA9 de Flore");
}

}  // namespace
}  // namespace chat::chat_service
