document.title = "Iris console";
