#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "chat_service/validation.h"

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
  EXPECT_EQ(ValidateUserContent(c, l).code(), v1::INVALID_ARGUMENT);
  c.mutable_text()->set_text("");
  EXPECT_FALSE(ValidateUserContent(c, l).ok());
  c.mutable_text()->set_text("你好你好你");  // 5 code points, 15 bytes
  EXPECT_TRUE(ValidateUserContent(c, l).ok());
  c.mutable_text()->set_text("123456");
  EXPECT_FALSE(ValidateUserContent(c, l).ok());

  c.mutable_media()->set_url("https://x/y.png");
  EXPECT_FALSE(ValidateUserContent(c, l).ok());  // kind missing
  c.mutable_media()->set_kind(v1::MEDIA_KIND_IMAGE);
  EXPECT_TRUE(ValidateUserContent(c, l).ok());
  c.mutable_media()->set_url(std::string(2049, 'u'));
  EXPECT_FALSE(ValidateUserContent(c, l).ok());

  c.mutable_location()->set_latitude(91);
  EXPECT_FALSE(ValidateUserContent(c, l).ok());
  c.mutable_location()->set_latitude(45);
  c.mutable_location()->set_longitude(NAN);
  EXPECT_FALSE(ValidateUserContent(c, l).ok());
  c.mutable_location()->set_longitude(-180);
  EXPECT_TRUE(ValidateUserContent(c, l).ok());

  c.mutable_contact_card()->set_user_id(0);
  EXPECT_FALSE(ValidateUserContent(c, l).ok());
  c.mutable_contact_card()->set_user_id(7);
  EXPECT_TRUE(ValidateUserContent(c, l).ok());

  c.mutable_system()->set_text("hi");
  EXPECT_EQ(ValidateUserContent(c, l).code(), v1::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace chat::chat_service
