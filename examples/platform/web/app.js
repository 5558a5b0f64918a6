document.getElementById("version").dataset.loaded = "yes";
