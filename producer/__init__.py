"""File-drop producer: split CSV drops into validated customer records and put them on the stream."""
