"""Built-in 'digits' models (CS180 part B): MNIST, the UNets, training and shipped weights."""
