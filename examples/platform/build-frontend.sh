#!/bin/sh
# The frontend build: copies web/ to dist/ with content-hashed asset names (app-3f2c1a9b.js),
# as Vite or webpack would, and points index.html at them. Only POSIX sh and coreutils.
set -eu
rm -rf dist
mkdir -p dist/assets
version=$(cat VERSION 2>/dev/null || echo dev)
sed "s/__VERSION__/$version/" web/index.html > dist/index.html
# The version is stamped into the script too, so each release's chunk has its own hash.
sed "s/__VERSION__/$version/" web/app.js > web/app.js.stamped && mv web/app.js.stamped web/app.js
for asset in web/app.js web/app.css; do
  name=$(basename "$asset")
  stem=${name%.*}
  ext=${name##*.}
  hash=$(sha256sum "$asset" | cut -c1-8)
  cp "$asset" "dist/assets/$stem-$hash.$ext"
  sed -i "s|/assets/$name|/assets/$stem-$hash.$ext|" dist/index.html
done
echo "frontend built: $(ls dist/assets | tr '\n' ' ')"
