"""Operations: starting the embedded Redis server and supervising the processes of `make run`."""
