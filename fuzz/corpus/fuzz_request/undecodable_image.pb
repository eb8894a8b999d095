
leafnetnot an image(=млл=