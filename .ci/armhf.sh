#!/usr/bin/env bash
# CI environment 4 (armv7l): .ci/arm.sh, which runs environment 5 (aarch64) as well.
exec bash "$(dirname "$0")/arm.sh" armhf "$@"
