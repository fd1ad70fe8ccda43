// Reading a repository password without it ever being a command-line value.
#pragma once

#include <string>
#include <string_view>

namespace zerobyte::ctl {

// From passwordFile ("-" for stdin) when given; else from stdin, prompting
// "Password for repository NAME: " with echo off when stdin is a terminal.
// Throws Error(InvalidArgument) for an empty password or an unreadable file,
// Error(Cancelled) when the prompt is interrupted.
std::string readRepositoryPassword(const std::string& passwordFile, const std::string& repositoryName);

// A secret's whole content from `path` ("-" for stdin), e.g. a private key (kept as it is) or a
// password (`stripNewline`: one trailing newline removed). `what` names it in errors ("--private-key-file").
// Throws Error(InvalidArgument) for an unreadable or empty file, or one over 64 KiB.
std::string readSecretFile(const std::string& path, std::string_view what, bool stripNewline);

// The password in text read from `source`: one trailing newline ("\n" or "\r\n") removed.
// Throws Error(InvalidArgument) naming the source when nothing is left.
std::string passwordFromText(std::string text, std::string_view source);

}  // namespace zerobyte::ctl
