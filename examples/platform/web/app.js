// Platform frontend, version __VERSION__ (the build stamps it, so every release's chunk is new).
document.getElementById("version").dataset.loaded = "__VERSION__";
