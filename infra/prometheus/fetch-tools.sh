#!/bin/sh
# promtool (rule and config checks), the Pushgateway (push tests) and amtool (Alertmanager config
# check) for `make test`, from Debian's `prometheus`, `prometheus-pushgateway` and
# `prometheus-alertmanager` packages. A tool already on PATH (or in DEST) is used as it is; a
# missing one is unpacked from its package into DEST (the venv's bin) instead of being installed: no daemon is started, nothing changes outside the checkout, and root is not needed
# (only for `apt-get update` when the package lists are empty).
set -eu
dest=${1:?usage: fetch-tools.sh DEST}
for pair in promtool:prometheus prometheus-pushgateway:prometheus-pushgateway amtool:prometheus-alertmanager; do
  tool=${pair%%:*}
  package=${pair#*:}
  if command -v "$tool" >/dev/null 2>&1 || [ -x "$dest/$tool" ]; then
    continue
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$tool is missing and apt-get is not available: install $tool (package $package) and put it on PATH" >&2
    exit 1
  fi
  work=$(mktemp -d)
  echo "fetching $tool from the Debian package $package"
  if ! (cd "$work" && apt-get download -q "$package" >/dev/null 2>&1); then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq; fi
    (cd "$work" && apt-get download -q "$package" >/dev/null) || {
      echo "could not download the Debian package $package for $tool" >&2; rm -rf "$work"; exit 1; }
  fi
  dpkg-deb -x "$work"/"$package"_*.deb "$work/root"
  cp "$work/root/usr/bin/$tool" "$dest/$tool"
  rm -rf "$work"
done
