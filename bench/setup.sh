#!/usr/bin/env bash
# Installs Postfix's smtp-source (the load generator) from Debian's postfix package, telling
# debconf not to configure a mail system, so no MTA is started or listens anywhere.
set -euo pipefail
command -v smtp-source >/dev/null 2>&1 && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get install -y -qq --no-install-recommends postfix >/dev/null
