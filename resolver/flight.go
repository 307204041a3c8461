package resolver

type flightGroup struct{}
